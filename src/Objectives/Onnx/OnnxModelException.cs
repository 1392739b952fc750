namespace ParetoPrune.Objectives.Onnx;

/// <summary>
/// A model that cannot be read or analysed: malformed, unsupported op, unresolvable shape, external data.
/// The message names the file, node and op where they are known, so the user can find the culprit.
/// </summary>
public sealed class OnnxModelException : Exception
{
    public OnnxModelException(string message, string? nodeName = null, string? opType = null, Exception? inner = null)
        : base(Compose(message, nodeName, opType), inner)
    {
        NodeName = nodeName;
        OpType = opType;
    }

    /// <summary>The node at fault, when the problem is one node's.</summary>
    public string? NodeName { get; }

    /// <summary>That node's op type.</summary>
    public string? OpType { get; }

    static string Compose(string message, string? nodeName, string? opType) =>
        nodeName is null ? message : $"node '{nodeName}' ({opType}): {message}";
}
