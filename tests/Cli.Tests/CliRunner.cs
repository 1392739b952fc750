using System.Diagnostics;

namespace ParetoPrune.Cli.Tests;

/// <summary>Runs the <c>paretoprune</c> command in-process, or as the real executable for end-to-end checks.</summary>
static class CliRunner
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "onnx", name);

    /// <summary>The shipped SimpleCnn (embedded in the CLI for the demo), written into <paramref name="directory"/>.</summary>
    public static string ShippedModel(string directory)
    {
        string path = Path.Combine(directory, "simplecnn-fashion-mnist.onnx");
        using var resource = typeof(CliApp).Assembly.GetManifestResourceStream("simplecnn-fashion-mnist.onnx")!;
        using (var file = File.Create(path)) resource.CopyTo(file);
        return path;
    }

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    public static (int ExitCode, string Output, string Error) RunProcess(params string[] args) => RunProcess(new Dictionary<string, string?>(), args);

    /// <summary>The real executable with <paramref name="environment"/> added to this process's (null removes a variable).</summary>
    public static (int ExitCode, string Output, string Error) RunProcess(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(120_000)) { process.Kill(true); throw new TimeoutException("paretoprune did not finish in 2 minutes"); }
        return (process.ExitCode, stdout.Result, stderr);
    }
}
