using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Tests.Onnx;

/// <summary>
/// Our reading, writing and counting against graphs exported by PyTorch (BN kept or folded, ReLU6 as Clip with
/// attributes or inputs, residual Add, depthwise convs, Concat, Shape→Reshape chains, MatMul heads), whose MACs and
/// parameters were counted independently from the torch modules (tools/fixtures/make_onnx_fixtures.py).
/// </summary>
public class FixtureAnalysisTests
{
    public static IEnumerable<object[]> Names() => Fixtures.Names();

    [Theory, MemberData(nameof(Names))]
    public void MacsParamsAndOutputShapeMatchTheTorchCount(string name)
    {
        var expected = Fixtures.Expected(name);
        var model = OnnxModel.Load(Fixtures.Model(name), out var normalization);
        var cost = ModelCost.Analyze(model);
        Assert.Equal(expected.GetProperty("macs").GetInt64(), cost.Macs);
        Assert.Equal(expected.GetProperty("params").GetInt64(), cost.Params);
        Assert.Equal(Fixtures.Shape(expected.GetProperty("input_shape")), cost.InputShape);
        Assert.Equal(Fixtures.Shape(expected.GetProperty("output_shape")), cost.OutputShape);
        Assert.Equal(OnnxModel.ToBytes(model).Length, cost.SerializedBytes);
        // Encodings of the same message may differ slightly (packed vs unpacked repeated integers); a model the loader
        // normalised (aliased weights split, initializer inputs dropped) is another model.
        if (!normalization.Changed) Assert.InRange(cost.SerializedBytes, new FileInfo(Fixtures.Model(name)).Length - 64, new FileInfo(Fixtures.Model(name)).Length + 64);
    }

    [Theory, MemberData(nameof(Names))]
    public void EveryConvolutionHasTheMacsOfItsTorchLayer(string name)
    {
        var expectedConvMacs = Fixtures.Expected(name).GetProperty("layers").EnumerateArray()
            .Where(l => l.GetProperty("type").GetString() == "Conv2d").Select(l => l.GetProperty("macs").GetInt64()).Order();
        var ourConvMacs = ModelCost.Analyze(OnnxModel.Load(Fixtures.Model(name))).Nodes
            .Where(n => n.OpType == "Conv").Select(n => n.Macs).Order();
        Assert.Equal(expectedConvMacs, ourConvMacs);
    }

    [Theory, MemberData(nameof(Names))]
    public void AModelWeWriteGivesTheSameOutputsAsTheFileWeReadAndAsTorch(string name)
    {
        var expected = Fixtures.Expected(name);
        byte[] original = File.ReadAllBytes(Fixtures.Model(name));
        byte[] rewritten = OnnxModel.ToBytes(OnnxModel.Parse(original, name));
        var input = Fixtures.ReadFloats(expected.GetProperty("inputs_file").GetString()!);
        var shape = Fixtures.Shape(expected.GetProperty("test_inputs_shape"));

        var fromOriginal = Ort.Run(original, "input", input, shape)["output"].Values;
        var fromRewritten = Ort.Run(rewritten, "input", input, shape)["output"].Values;
        Assert.Equal(fromOriginal, fromRewritten); // bit-identical: nothing lost in the round trip
        Ort.AssertClose(Fixtures.ReadFloats(expected.GetProperty("outputs_file").GetString()!), fromRewritten, relative: 1e-4, absolute: 1e-5);
    }

    [Theory, MemberData(nameof(Names))]
    public void InferredShapesEqualTheShapesOnnxRuntimeProduces(string name)
    {
        var model = OnnxModel.Load(Fixtures.Model(name));
        var inferred = ShapeInference.Infer(new OnnxGraph(model));
        // Expose every float intermediate as a graph output and let ONNX Runtime tell its real shape.
        var probe = model.Clone();
        var floatTensors = inferred.Where(kv => kv.Value.ElementType == (int)TensorProto.Types.DataType.Float
                                                && !probe.Graph.Output.Any(o => o.Name == kv.Key)
                                                && !probe.Graph.Input.Any(i => i.Name == kv.Key)
                                                && !probe.Graph.Initializer.Any(i => i.Name == kv.Key)
                                                && probe.Graph.Node.Any(n => n.Output.Contains(kv.Key) && n.OpType != "Constant"))
                                   .Select(kv => kv.Key).ToList();
        foreach (string tensor in floatTensors)
            probe.Graph.Output.Add(new ValueInfoProto
            {
                Name = tensor,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        var inputShape = inferred["input"].Shape;
        var outputs = Ort.Run(OnnxModel.ToBytes(probe), "input", new float[inputShape.Aggregate(1L, (a, b) => a * b)], inputShape);
        Assert.NotEmpty(floatTensors);
        foreach (string tensor in floatTensors)
            Assert.True(outputs[tensor].Shape.SequenceEqual(inferred[tensor].Shape),
                        $"{tensor}: ONNX Runtime [{string.Join(",", outputs[tensor].Shape)}], inferred [{inferred[tensor]}]");
    }

    [Fact]
    public void ReluSixAsClipAttributesAndAsClipInputsAnalyseTheSame()
    {
        var opset9 = ModelCost.Analyze(OnnxModel.Load(Fixtures.Model("mobilenet_tiny_opset9")));
        var opset13 = ModelCost.Analyze(OnnxModel.Load(Fixtures.Model("mobilenet_tiny")));
        Assert.Equal(9, new OnnxGraph(OnnxModel.Load(Fixtures.Model("mobilenet_tiny_opset9"))).OpsetVersion);
        Assert.Equal(opset9.Macs, opset13.Macs);
        Assert.Equal(opset9.Params, opset13.Params); // Clip's min/max constants are not parameters
        Assert.Equal(opset9.Nodes.Count(n => n.OpType == "Clip"), opset13.Nodes.Count(n => n.OpType == "Clip"));
    }

    [Fact]
    public void AGivenInputShapeRescalesConvolutionCostsOnly()
    {
        var model = OnnxModel.Load(Fixtures.Model("resnet_tiny"));
        var at16 = ModelCost.Analyze(model);
        var at32 = ModelCost.Analyze(model, [1, 3, 32, 32]);
        long gemm = at16.Nodes.Where(n => n.OpType == "Gemm").Sum(n => n.Macs);
        // Convolutions see four times the pixels; the classifier after global pooling does not.
        Assert.Equal(4 * (at16.Macs - gemm) + gemm, at32.Macs);
        Assert.Equal(at16.Params, at32.Params);
        var batch4 = ModelCost.Analyze(model, [4, 3, 16, 16]);
        Assert.Equal(4 * at16.Macs, batch4.Macs);
    }

    [Fact]
    public void TheBatchNormalisationKeptOrFoldedChangesParamsByExactlyGammaAndBeta()
    {
        var kept = ModelCost.Analyze(OnnxModel.Load(Fixtures.Model("plain_cnn_bn")));
        var folded = ModelCost.Analyze(OnnxModel.Load(Fixtures.Model("plain_cnn_folded")));
        Assert.Equal(kept.Macs, folded.Macs);
        long bnGammaBeta = kept.Nodes.Where(n => n.OpType == "BatchNormalization").Sum(n => n.Params);
        long foldedBiases = 8 + 16; // each folded conv gains a bias of its output channels
        Assert.Equal(2 * (8 + 16), bnGammaBeta);
        Assert.Equal(kept.Params - bnGammaBeta + foldedBiases, folded.Params);
    }
}
