using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>
/// Tensors an ONNX file keeps in other files ("external data", for models near the 2 GB protobuf limit), read into the
/// model when it is loaded from a path, so every command works on the same, complete model. Locations are resolved
/// against the model's own folder and must stay inside it, as the ONNX spec requires: a model is never a way to read
/// other files.
/// </summary>
static class ExternalTensorData
{
    /// <summary>Embeds every external tensor of <paramref name="model"/>, loaded from <paramref name="modelPath"/>.</summary>
    /// <exception cref="OnnxModelException">A data file is missing, outside the model's folder, or shorter than the tensor says; the message names both.</exception>
    public static void Embed(ModelProto model, string modelPath)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(modelPath))!;
        foreach (var tensor in Tensors(model.Graph))
            if (tensor.DataLocation == TensorProto.Types.DataLocation.External || tensor.ExternalData.Count > 0)
                Embed(tensor, folder, modelPath);
    }

    static void Embed(TensorProto tensor, string folder, string modelPath)
    {
        var entries = tensor.ExternalData.ToDictionary(e => e.Key, e => e.Value, StringComparer.Ordinal);
        string Fail(string why) => throw new OnnxModelException($"{modelPath}: tensor '{tensor.Name}' keeps its data outside the model, but {why}");
        if (!entries.TryGetValue("location", out string? location) || location.Length == 0) Fail("names no file (no 'location')");
        if (Path.IsPathRooted(location!)) Fail($"names an absolute path ('{location}'); ONNX external data is relative to the model's folder");
        string file = Path.GetFullPath(Path.Combine(folder, location!));
        if (!file.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal)) Fail($"names '{location}', which is outside the model's folder {folder}");
        if (!File.Exists(file)) Fail($"its data file {file} does not exist");
        long offset = entries.TryGetValue("offset", out string? o) ? Number(o, "offset") : 0;
        long fileLength = new FileInfo(file).Length;
        long length = entries.TryGetValue("length", out string? l) ? Number(l, "length") : fileLength - offset;
        if (offset < 0 || length < 0 || offset + length > fileLength)
            Fail($"asks for bytes {offset}–{offset + length} of {file}, which holds {fileLength}");
        if (length > int.MaxValue) Fail($"is {length} bytes, beyond what one protobuf message can hold");
        var bytes = new byte[length];
        using (var stream = File.OpenRead(file))
        {
            stream.Seek(offset, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
        }
        tensor.RawData = ByteString.CopyFrom(bytes);
        tensor.ExternalData.Clear();
        tensor.DataLocation = TensorProto.Types.DataLocation.Default;

        long Number(string text, string what) => long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long v)
            ? v : throw new OnnxModelException($"{modelPath}: tensor '{tensor.Name}' has external data {what} '{text}', which is not a byte count");
    }

    /// <summary>
    /// A copy of <paramref name="model"/> whose initializers of at least <paramref name="minimumBytes"/> live in
    /// "<c>FILE.data</c>" beside <paramref name="modelPath"/> (written here, atomically), as ONNX's external data: how a
    /// model over protobuf's 2 GB limit is saved. ONNX Runtime and <see cref="Embed"/> read it back.
    /// </summary>
    public static ModelProto Externalize(ModelProto model, string modelPath, long minimumBytes = 1024)
    {
        var copy = model.Clone();
        string dataName = Path.GetFileName(modelPath) + ".data";
        string dataPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, dataName);
        string temporary = dataPath + $".{Environment.ProcessId}.tmp";
        try
        {
            using (var stream = File.Create(temporary))
            {
                var initializers = copy.Graph.Initializer;
                for (int i = 0; i < initializers.Count; i++)
                {
                    var tensor = initializers[i];
                    if (tensor.RawData.Length == 0 && tensor.DataType == (int)TensorProto.Types.DataType.Float && tensor.FloatData.Count > 0)
                        tensor = initializers[i] = OnnxTensors.CreateFloat(tensor.Name, tensor.Dims.ToArray(), OnnxTensors.ReadFloats(tensor));
                    if (tensor.RawData.Length < minimumBytes) continue;
                    long offset = stream.Position;
                    tensor.RawData.WriteTo(stream);
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = dataName });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = tensor.RawData.Length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    tensor.DataLocation = TensorProto.Types.DataLocation.External;
                    tensor.RawData = ByteString.Empty;
                }
            }
            File.Move(temporary, dataPath, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
        return copy;
    }

    /// <summary>Every tensor a graph holds: initializers and tensor attributes, subgraphs included (the schema here has no sparse tensors:
    /// the device side's <c>OnnxExternalData</c> refuses those).</summary>
    static IEnumerable<TensorProto> Tensors(GraphProto? graph)
    {
        if (graph is null) yield break;
        foreach (var t in graph.Initializer) yield return t;
        foreach (var t in graph.Node.SelectMany(Tensors)) yield return t;
    }

    static IEnumerable<TensorProto> Tensors(NodeProto node)
    {
        foreach (var a in node.Attribute)
        {
            if (a.T is not null) yield return a.T;
            foreach (var t in a.Tensors) yield return t;
            foreach (var t in Tensors(a.G)) yield return t;
            foreach (var t in a.Graphs.SelectMany(Tensors)) yield return t;
        }
    }
}
