using System.Diagnostics;

namespace ParetoPrune.Devices.Tests.Meters;

/// <summary>A throwaway directory standing in for a sysfs tree (/sys/class/hwmon, /sys/class/powercap).</summary>
internal sealed class TempTree : IDisposable
{
    public TempTree()
    {
        Root = Path.Combine(Path.GetTempPath(), "paretoprune-meters-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Root);
    }

    public string Root { get; }

    public string PathOf(string relative) => Path.Combine(Root, relative);

    /// <summary>
    /// Writes a file by rename, as sysfs values change: a reader sees the old or the new value, never an empty or
    /// half-written file. Returns the timestamps just before and just after the switch.
    /// </summary>
    public (long Before, long After) Write(string relative, string content)
    {
        var path = PathOf(relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var staging = path + ".new";
        File.WriteAllText(staging, content + "\n");
        var before = Stopwatch.GetTimestamp();
        File.Move(staging, path, overwrite: true);
        return (before, Stopwatch.GetTimestamp());
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Root, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }
}
