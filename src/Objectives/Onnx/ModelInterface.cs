using System.Text.Json;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>
/// What a consumer of a model must know to feed it: the class names, NCHW layout, pixels scaled to [0, 1], and the
/// normalisation that the graph itself applies (so an ML.NET app feeds raw pixels / 255 and nothing else).
/// Stored in the model's <c>metadata_props</c>.
/// </summary>
public sealed record ModelInterface(IReadOnlyList<string> ClassNames, int Channels, int Height, int Width, float[] Mean, float[] Std)
{
    public const string ClassNamesKey = "paretoprune.class_names";
    public const string LayoutKey = "paretoprune.input_layout";
    public const string PixelRangeKey = "paretoprune.pixel_range";
    public const string MeanKey = "paretoprune.normalization_mean";
    public const string StdKey = "paretoprune.normalization_std";
    public const string InputShapeKey = "paretoprune.input_shape";

    /// <summary>Reads the interface a model declares, or null for models not written by ParetoPrune.</summary>
    public static ModelInterface? Read(ModelProto model)
    {
        string? names = OnnxModel.GetMetadata(model, ClassNamesKey);
        string? shape = OnnxModel.GetMetadata(model, InputShapeKey);
        if (names is null || shape is null) return null;
        var chw = JsonSerializer.Deserialize<int[]>(shape)!;
        return new ModelInterface(JsonSerializer.Deserialize<string[]>(names)!, chw[0], chw[1], chw[2],
                                  JsonSerializer.Deserialize<float[]>(OnnxModel.GetMetadata(model, MeanKey) ?? "[]")!,
                                  JsonSerializer.Deserialize<float[]>(OnnxModel.GetMetadata(model, StdKey) ?? "[]")!);
    }

    /// <summary>Records this interface in the model's metadata.</summary>
    public void WriteTo(ModelProto model)
    {
        OnnxModel.SetMetadata(model, ClassNamesKey, JsonSerializer.Serialize(ClassNames));
        OnnxModel.SetMetadata(model, LayoutKey, "NCHW");
        OnnxModel.SetMetadata(model, PixelRangeKey, "[0,1]");
        OnnxModel.SetMetadata(model, InputShapeKey, JsonSerializer.Serialize(new[] { Channels, Height, Width }));
        OnnxModel.SetMetadata(model, MeanKey, JsonSerializer.Serialize(Mean));
        OnnxModel.SetMetadata(model, StdKey, JsonSerializer.Serialize(Std));
    }

    /// <summary>
    /// Returns a copy whose graph starts with (x − mean) / std per channel, followed by the original graph, with this
    /// interface recorded. The constants are not learnable: training leaves them alone and pruning never touches them.
    /// </summary>
    public ModelProto Prepend(ModelProto model)
    {
        if (Read(model) is not null) throw new ArgumentException("the model already declares a ParetoPrune input interface (normalisation is in the graph)");
        if (Mean.Length != Channels || Std.Length != Channels)
            throw new ArgumentException($"normalisation has {Mean.Length} means and {Std.Length} deviations for {Channels} channels");
        var result = model.Clone();
        var graph = result.Graph;
        string input = graph.Input[0].Name;
        string centred = OnnxModel.UniqueName(result, "normalize_centred"), normalised = OnnxModel.UniqueName(result, "normalized_input");
        foreach (var node in graph.Node)
            for (int i = 0; i < node.Input.Count; i++)
                if (node.Input[i] == input) node.Input[i] = normalised;
        string mean = OnnxModel.UniqueName(result, "normalize_mean"), std = OnnxModel.UniqueName(result, "normalize_std");
        graph.Initializer.Add(OnnxTensors.CreateFloat(mean, [1, Channels, 1, 1], Mean));
        graph.Initializer.Add(OnnxTensors.CreateFloat(std, [1, Channels, 1, 1], Std));
        var sub = new NodeProto { OpType = "Sub", Name = "normalize_sub", Input = { input, mean }, Output = { centred } };
        var div = new NodeProto { OpType = "Div", Name = "normalize_div", Input = { centred, std }, Output = { normalised } };
        graph.Node.Insert(0, div);
        graph.Node.Insert(0, sub);
        WriteTo(result);
        return result;
    }
}
