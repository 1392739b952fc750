using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>Typed access to a node's attributes, with ONNX's defaults supplied by the caller.</summary>
public static class NodeAttributes
{
    public static AttributeProto? Attribute(this NodeProto node, string name)
    {
        foreach (var attribute in node.Attribute)
            if (attribute.Name == name) return attribute;
        return null;
    }

    public static long GetInt(this NodeProto node, string name, long fallback) =>
        node.Attribute(name) is { } a ? a.I : fallback;

    public static float GetFloat(this NodeProto node, string name, float fallback) =>
        node.Attribute(name) is { } a ? a.F : fallback;

    public static string GetString(this NodeProto node, string name, string fallback) =>
        node.Attribute(name) is { } a ? a.S.ToStringUtf8() : fallback;

    public static long[]? GetInts(this NodeProto node, string name) =>
        node.Attribute(name) is { } a ? a.Ints.ToArray() : null;

    public static float[]? GetFloats(this NodeProto node, string name) =>
        node.Attribute(name) is { } a ? a.Floats.ToArray() : null;

    public static void SetInt(this NodeProto node, string name, long value) =>
        Replace(node, new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value });

    public static void SetInts(this NodeProto node, string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.Add(values);
        Replace(node, attribute);
    }

    public static void SetFloat(this NodeProto node, string name, float value) =>
        Replace(node, new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value });

    public static void SetString(this NodeProto node, string name, string value) =>
        Replace(node, new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(value) });

    static void Replace(NodeProto node, AttributeProto attribute)
    {
        for (int i = 0; i < node.Attribute.Count; i++)
        {
            if (node.Attribute[i].Name != attribute.Name) continue;
            node.Attribute[i] = attribute;
            return;
        }
        node.Attribute.Add(attribute);
    }
}
