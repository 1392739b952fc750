namespace ParetoPrune.Devices;

/// <summary>
/// Finds tensors an ONNX file stores outside itself ("external data": a file path in the tensor). A model measured from
/// bytes has no folder to resolve such paths against, so ONNX Runtime would read them relative to the process's
/// working directory: any file the process may read, echoed back in errors. Devices that measure uploaded bytes refuse
/// these models. A minimal protobuf walk over the fields that can hold tensors (this project keeps the ONNX schema out
/// of the device side, which runs on the Pi).
/// </summary>
public static class OnnxExternalData
{
    // Field numbers from onnx.proto: which fields of which message hold nested messages that may hold tensors.
    enum Message { Model, Graph, Node, Attribute, Tensor, SparseTensor, Function }

    static readonly Dictionary<(Message, int), Message> Nested = new()
    {
        [(Message.Model, 7)] = Message.Graph, [(Message.Model, 25)] = Message.Function,
        [(Message.Graph, 1)] = Message.Node, [(Message.Graph, 5)] = Message.Tensor, [(Message.Graph, 15)] = Message.SparseTensor,
        [(Message.Node, 5)] = Message.Attribute,
        [(Message.Attribute, 5)] = Message.Tensor, [(Message.Attribute, 6)] = Message.Graph, [(Message.Attribute, 10)] = Message.Tensor,
        [(Message.Attribute, 11)] = Message.Graph, [(Message.Attribute, 22)] = Message.SparseTensor, [(Message.Attribute, 23)] = Message.SparseTensor,
        [(Message.SparseTensor, 1)] = Message.Tensor, [(Message.SparseTensor, 2)] = Message.Tensor,
        [(Message.Function, 7)] = Message.Node,
    };

    const int TensorName = 8, TensorExternalData = 13, TensorDataLocation = 14, External = 1;

    /// <summary>The name of the first tensor stored as external data ("" when unnamed), or null when every tensor is
    /// inside the file. Bytes that are not a well-formed protobuf return null: ONNX Runtime rejects them itself.</summary>
    public static string? FirstExternalTensor(ReadOnlySpan<byte> model)
    {
        try
        {
            return Find(model, Message.Model, depth: 0);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    static string? Find(ReadOnlySpan<byte> data, Message message, int depth)
    {
        if (depth > 64) throw new FormatException("nested too deeply");
        string name = "";
        bool external = false;
        int at = 0;
        while (at < data.Length)
        {
            ulong key = Varint(data, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0:
                    ulong value = Varint(data, ref at);
                    if (message == Message.Tensor && field == TensorDataLocation && value == External) external = true;
                    break;
                case 1: at = Skip(data, at, 8); break;
                case 5: at = Skip(data, at, 4); break;
                case 2:
                    ulong length = Varint(data, ref at);
                    if (length > (ulong)(data.Length - at)) throw new FormatException("length past the end");
                    var payload = data.Slice(at, (int)length);
                    at += (int)length;
                    if (message == Message.Tensor && field == TensorName) name = System.Text.Encoding.UTF8.GetString(payload);
                    else if (message == Message.Tensor && field == TensorExternalData) external = true;
                    else if (Nested.TryGetValue((message, field), out var inner) && Find(payload, inner, depth + 1) is { } found) return found;
                    break;
                default:
                    throw new FormatException($"wire type {wire}");
            }
        }
        return external ? name : null;
    }

    static int Skip(ReadOnlySpan<byte> data, int at, int bytes) =>
        at + bytes <= data.Length ? at + bytes : throw new FormatException("field past the end");

    static ulong Varint(ReadOnlySpan<byte> data, ref int at)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (at >= data.Length) throw new FormatException("varint past the end");
            byte b = data[at++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw new FormatException("varint too long");
    }
}
