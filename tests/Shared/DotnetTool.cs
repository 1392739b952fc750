using System.Diagnostics;

namespace ParetoPrune.Tests.Shared;

/// <summary>The .NET SDK as a test drives it: pack, restore, build and run projects outside the test process.</summary>
public static class DotnetTool
{
    /// <summary>The global NuGet package cache (NUGET_PACKAGES, or ~/.nuget/packages).</summary>
    public static string PackageCache { get; } = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    /// <summary>Runs <paramref name="file"/> in <paramref name="workingDirectory"/>; its exit code and its output and errors
    /// together, or -1 when it ran past <paramref name="timeout"/> (then it is killed).</summary>
    public static (int Code, string Output) Run(string file, string workingDirectory, TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo(file) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout)) { process.Kill(true); return (-1, output.Result + "\n(timed out)"); }
        return (process.ExitCode, output.Result + error.Result);
    }

    /// <summary>Removes a package version a test packed and restored from the cache, so that runs do not accumulate them.</summary>
    public static void ForgetPackage(string id, string version)
    {
        string folder = Path.Combine(PackageCache, id.ToLowerInvariant(), version);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }
}
