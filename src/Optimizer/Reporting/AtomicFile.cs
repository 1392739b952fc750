using System.Text;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>Whole-file writes that a reader (or an interrupted run) never sees half done.</summary>
static class AtomicFile
{
    static readonly UTF8Encoding Utf8NoBom = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>Writes UTF-8 without BOM to a temporary file beside <paramref name="path"/>, then renames it over.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, Utf8NoBom.GetBytes(text));

    /// <summary>Writes to a temporary file beside <paramref name="path"/>, then renames it over.</summary>
    public static void WriteAllBytes(string path, byte[] bytes)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        // Same folder, so the move is a rename on one file system; the unique name lets writers run side by side.
        string temporary = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }
}
