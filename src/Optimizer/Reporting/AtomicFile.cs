using System.Text;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>Whole-file writes that a reader (or an interrupted run) never sees half done.</summary>
public static class AtomicFile
{
    static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Writes UTF-8 without BOM to a temporary file beside <paramref name="path"/>, then renames it over.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Utf8NoBom.GetBytes(text));

    /// <summary>Copies <paramref name="source"/> to a temporary file beside <paramref name="path"/>, then renames it over: a
    /// reader of the file <paramref name="path"/> was sees it whole, and an interrupted copy leaves it as it was.</summary>
    public static void Copy(string source, string path) => Replace(path, temporary => File.Copy(source, temporary));

    /// <summary>Writes to a temporary file beside <paramref name="path"/>, then renames it over.</summary>
    public static void WriteAllBytes(string path, byte[] bytes) => Replace(path, temporary => File.WriteAllBytes(temporary, bytes));

    static void Replace(string path, Action<string> write)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        // Same folder, so the move is a rename on one file system; the unique name lets writers run side by side.
        string temporary = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            write(temporary);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
