using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Tests.Onnx;

/// <summary>The loader's rewrites of exporters' graphs change nothing that the model computes.</summary>
public class ExportNormalizerTests
{
    /// <summary>What exporters write: an initializer also listed as a graph input, a zero bias reaching two convs (once
    /// through Identity), and a weight computed from constants (Transpose of an initializer).</summary>
    static ModelProto ExporterStyle()
    {
        var random = new Random(1);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var b = new OnnxModelBuilder("exported", 13);
        string x = b.Input("input", 1, 3, 6, 6);
        string zeros = b.Initializer("zeros", [4], new float[4]);
        string alias = b.Node("Identity", [zeros], "alias");
        x = b.Node("Conv", [x, b.Initializer("w1", [4, 3, 3, 3], Values(108)), alias], "conv1", ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Relu", [x], "relu1");
        string transposed = b.Node("Transpose", [b.Initializer("w2t", [4, 4, 1, 1], Values(16))], "w2", ("perm", new long[] { 1, 0, 2, 3 }));
        x = b.Node("Conv", [x, transposed, zeros], "conv2");
        x = b.Node("Relu", [x], "relu2");
        x = b.Node("GlobalAveragePool", [x], "pool");
        x = b.Node("Flatten", [x], "flatten");
        x = b.Node("Gemm", [x, b.Initializer("fc", [2, 4], Values(8))], "fc", ("transB", 1L));
        b.Output(x, 1, 2);
        var model = b.Build();
        var type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() } };
        foreach (long d in new long[] { 4, 3, 3, 3 }) type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        model.Graph.Input.Add(new ValueInfoProto { Name = "w1", Type = type }); // as IR < 4 wrote every initializer
        return model;
    }

    static float[] Run(ModelProto model, float[] input) => Ort.Run(OnnxModel.ToBytes(model), "input", input, [1, 3, 6, 6]).Values.Single().Values;

    [Fact]
    public void EachRewriteIsMadeAndTheOutputsStayBitIdentical()
    {
        var original = ExporterStyle();
        var normalized = ExportNormalizer.Normalize(original, out var changes);
        Assert.Equal(new Normalization(IdentitiesRemoved: 1, SharedInitializersSplit: 1, NodesFolded: 1, InputsDropped: 1), changes);

        var graph = normalized.Graph;
        Assert.DoesNotContain(graph.Node, n => n.OpType is "Identity" or "Transpose");
        Assert.Single(graph.Input);
        var readers = graph.Node.SelectMany(n => n.Input).Where(i => graph.Initializer.Any(t => t.Name == i)).GroupBy(i => i);
        Assert.All(readers, r => Assert.Single(r)); // every initializer read once
        var input = Enumerable.Range(0, 108).Select(i => (float)Math.Sin(i)).ToArray();
        Assert.Equal(Run(original, input), Run(normalized, input));
        Assert.Equal("1 Identity node(s) of constants bypassed, 1 shared initializer(s) given one copy per consumer, 1 constant node(s) folded, " +
                     "1 initializer(s) removed from the graph inputs", changes.ToString());
    }

    [Fact]
    public void AModelThatNeedsNothingIsReturnedAsItIs()
    {
        var model = OnnxModel.Parse(File.ReadAllBytes(Fixtures.Model("resnet_tiny")));
        Assert.Same(model, ExportNormalizer.Normalize(model, out var changes));
        Assert.False(changes.Changed);
    }

    [Theory]
    [InlineData("mobilenetv2_fresh")]
    [InlineData("resnet_fresh")]
    [InlineData("shufflenet_fresh")]
    public void FreshExportsLoseTheirAliasesAndCountAsTheirTorchModules(string name)
    {
        var raw = OnnxModel.Parse(File.ReadAllBytes(Fixtures.Model(name)));
        var loaded = OnnxModel.Load(Fixtures.Model(name), out var changes);
        Assert.True(changes.IdentitiesRemoved > 0 && changes.SharedInitializersSplit > 0, changes.ToString());
        Assert.True(ModelCost.Analyze(raw).Params < Fixtures.Expected(name).GetProperty("params").GetInt64()); // aliases counted once
        Assert.Equal(Fixtures.Expected(name).GetProperty("params").GetInt64(), ModelCost.Analyze(loaded).Params);
        var expected = Fixtures.Expected(name);
        var input = Fixtures.ReadFloats(expected.GetProperty("inputs_file").GetString()!);
        var shape = Fixtures.Shape(expected.GetProperty("test_inputs_shape"));
        Assert.Equal(Ort.Run(OnnxModel.ToBytes(raw), "input", input, shape)["output"].Values,
                     Ort.Run(OnnxModel.ToBytes(loaded), "input", input, shape)["output"].Values);
    }
}
