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
        var reader = new ProtoReader(data);
        while (reader.Next())
        {
            if (message != Message.Tensor)
            {
                if (reader.Wire == 2 && Nested.TryGetValue((message, reader.Field), out var inner) && Find(reader.Bytes, inner, depth + 1) is { } found) return found;
            }
            else if (reader.Wire == 0 && reader.Field == TensorDataLocation && reader.Value == External) external = true;
            else if (reader.Wire == 2 && reader.Field == TensorName) name = System.Text.Encoding.UTF8.GetString(reader.Bytes);
            else if (reader.Wire == 2 && reader.Field == TensorExternalData) external = true;
        }
        return external ? name : null;
    }
}
