using Google.Protobuf;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>Reading and writing ONNX files. Every model the tool handles, built-in or imported, is a <see cref="ModelProto"/>.</summary>
public static class OnnxModel
{
    /// <summary>The default ONNX operator domain; "ai.onnx" is its long name.</summary>
    public static bool IsDefaultDomain(string domain) => domain.Length == 0 || domain == "ai.onnx";

    /// <summary>Whether the model already holds QuantizeLinear or DequantizeLinear nodes (an INT8 model).</summary>
    public static bool IsQuantized(ModelProto model) => model.Graph.Node.Any(n => n.OpType is "QuantizeLinear" or "DequantizeLinear");

    /// <summary>Reads a model file, with its external tensor data, normalised (<see cref="ExportNormalizer"/>).</summary>
    public static ModelProto Load(string path) => Load(path, out _);

    public static ModelProto Load(string path, out Normalization normalization)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX model '{path}' does not exist", path);
        var model = Parse(File.ReadAllBytes(path), path);
        ExternalTensorData.Embed(model, path); // tensors kept beside the file: read now, so every command sees the whole model
        return ExportNormalizer.Normalize(model, out normalization);
    }

    public static ModelProto Parse(byte[] bytes, string sourceName = "model")
    {
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new OnnxModelException($"'{sourceName}' is not a valid ONNX model ({bytes.Length} bytes): {e.Message}", inner: e);
        }
        if (model.Graph is null || model.Graph.Node.Count == 0)
            throw new OnnxModelException($"'{sourceName}' is not an ONNX model: it has no graph or an empty one");
        return model;
    }

    public static byte[] ToBytes(ModelProto model) => model.ToByteArray();

    /// <summary>Protobuf's limit on one message, less room for the graph: larger models keep their weights beside the file.</summary>
    internal const long ExternalDataAbove = 2L * 1024 * 1024 * 1024 - 64L * 1024 * 1024;

    /// <summary>Writes atomically: a reader never sees a half-written model, and a failure leaves the old file intact.
    /// A model whose weights pass protobuf's 2 GB limit is written with them in "<c>FILE.data</c>" (ONNX external data).</summary>
    public static void Save(ModelProto model, string path) => Save(model, path, ExternalDataAbove);

    internal static void Save(ModelProto model, string path, long externalDataAbove)
    {
        string? directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        long weightBytes = model.Graph.Initializer.Sum(t => (long)t.RawData.Length + 4L * t.FloatData.Count + 8L * t.Int64Data.Count);
        if (weightBytes > externalDataAbove) model = ExternalTensorData.Externalize(model, path);
        string temporary = path + $".{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllBytes(temporary, model.ToByteArray());
            File.Move(temporary, path, overwrite: true);
        }
        finally
        {
            if (File.Exists(temporary)) File.Delete(temporary);
        }
    }

    /// <summary>Opset version of the default domain (what decides e.g. whether Clip takes min/max as inputs).</summary>
    public static long OpsetVersion(ModelProto model)
    {
        foreach (var opset in model.OpsetImport)
            if (IsDefaultDomain(opset.Domain)) return opset.Version;
        return 1;
    }

    /// <summary>A tensor name not yet used in the model (initializers, node outputs, graph inputs): <paramref name="wanted"/>, or it with a suffix.</summary>
    public static string UniqueName(ModelProto model, string wanted)
    {
        var used = model.Graph.Node.SelectMany(n => n.Output).Concat(model.Graph.Initializer.Select(i => i.Name))
                                   .Concat(model.Graph.Input.Select(i => i.Name)).ToHashSet(StringComparer.Ordinal);
        string name = wanted;
        for (int i = 1; used.Contains(name); i++) name = $"{wanted}_{i}";
        return name;
    }

    public static string? GetMetadata(ModelProto model, string key) =>
        model.MetadataProps.FirstOrDefault(p => p.Key == key)?.Value;

    public static void SetMetadata(ModelProto model, string key, string value)
    {
        var existing = model.MetadataProps.FirstOrDefault(p => p.Key == key);
        if (existing is not null) existing.Value = value;
        else model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
    }
}

/// <summary>Sizes of a model file: dense, and gzip-compressed (where unstructured sparsity shows).</summary>
public static class ModelSize
{
    public static long Compressed(byte[] serialized)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new System.IO.Compression.GZipStream(buffer, System.IO.Compression.CompressionLevel.Optimal, leaveOpen: true))
            gzip.Write(serialized);
        return buffer.Length;
    }
}
