namespace ParetoPrune.Objectives.Data;

/// <summary>
/// A dataset file whose content is not what its format requires. The message names the file and
/// the problem; <see cref="Offset"/> is the byte offset of the problem where one applies (for
/// gzipped files, an offset into the decompressed bytes).
/// </summary>
public sealed class DatasetFormatException : Exception
{
    public DatasetFormatException(string filePath, string problem, long? offset = null, Exception? inner = null)
        : base(Compose(filePath, problem, offset), inner)
    {
        FilePath = filePath;
        Offset = offset;
    }

    public string FilePath { get; }

    public long? Offset { get; }

    private static string Compose(string filePath, string problem, long? offset) =>
        offset is { } at ? $"{filePath}: {problem} (at byte offset {at})" : $"{filePath}: {problem}";
}
