namespace ParetoPrune.Tests.Shared;

/// <summary>Files of this repository that tests read: shipped models, scripts, examples.</summary>
public static class Repository
{
    /// <summary>The folder that holds Optimizer.sln, found above the test binaries.</summary>
    public static string Root { get; } = Find();

    /// <summary>A path inside the repository.</summary>
    public static string File(params string[] parts) => Path.Combine([Root, .. parts]);

    static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "Optimizer.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (Optimizer.sln) is not above the test binaries");
    }
}
