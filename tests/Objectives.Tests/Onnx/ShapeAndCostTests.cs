using Google.Protobuf;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Tests.Onnx;

/// <summary>Hand-built graphs for the shape rules exporters rarely exercise; ONNX Runtime checks each shape.</summary>
public class ShapeAndCostTests
{
    static float[] Weights(int count, int seed = 1)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
    }

    /// <summary>Checks every node output's inferred shape against ONNX Runtime's actual output.</summary>
    static IReadOnlyDictionary<string, TensorInfo> AssertShapesMatchOnnxRuntime(ModelProto model, long[] inputShape)
    {
        var inferred = ShapeInference.Infer(new OnnxGraph(model));
        var probe = model.Clone();
        foreach (var node in probe.Graph.Node)
            if (!probe.Graph.Output.Any(o => o.Name == node.Output[0]))
                probe.Graph.Output.Add(new ValueInfoProto
                {
                    Name = node.Output[0],
                    Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
                });
        var outputs = Ort.Run(OnnxModel.ToBytes(probe), "x", Weights((int)inputShape.Aggregate(1L, (a, b) => a * b)), inputShape);
        foreach (var node in model.Graph.Node)
            Assert.True(outputs[node.Output[0]].Shape.SequenceEqual(inferred[node.Output[0]].Shape),
                        $"{node.Name} ({node.OpType}): ONNX Runtime [{string.Join(",", outputs[node.Output[0]].Shape)}], inferred [{inferred[node.Output[0]]}]");
        return inferred;
    }

    [Fact]
    public void ConvolutionPaddingModesStridesDilationsAndGroups()
    {
        var b = new OnnxModelBuilder("convs", opset: 13);
        string x = b.Input("x", 1, 4, 9, 11);
        string same = b.Node("Conv", [x, b.Initializer("w1", [8, 4, 3, 3], Weights(288))], "same",
                             ("auto_pad", "SAME_UPPER"), ("strides", new long[] { 2, 2 }));
        string dilated = b.Node("Conv", [same, b.Initializer("w2", [8, 8, 3, 3], Weights(576)), b.Initializer("b2", [8], Weights(8))], "dilated",
                                ("dilations", new long[] { 2, 2 }), ("pads", new long[] { 2, 1, 2, 1 }));
        string depthwise = b.Node("Conv", [dilated, b.Initializer("w3", [8, 1, 3, 3], Weights(72))], "depthwise",
                                  ("group", 8L), ("pads", new long[] { 1, 1, 1, 1 }), ("strides", new long[] { 2, 1 }));
        string grouped = b.Node("Conv", [depthwise, b.Initializer("w4", [4, 4, 1, 1], Weights(16))], "grouped", ("group", 2L));
        string valid = b.Node("Conv", [grouped, b.Initializer("w5", [2, 4, 2, 2], Weights(32))], "valid", ("auto_pad", "VALID"));
        b.Output(valid);
        var model = b.Build();

        var shapes = AssertShapesMatchOnnxRuntime(model, [1, 4, 9, 11]);
        Assert.Equal([1L, 8, 5, 6], shapes["same"].Shape);       // ceil(9/2), ceil(11/2)
        Assert.Equal([1L, 8, 5, 4], shapes["dilated"].Shape);    // 5+4-5+1, 6+2-5+1
        Assert.Equal([1L, 8, 3, 4], shapes["depthwise"].Shape);

        var cost = ModelCost.Analyze(model);
        long[] macs = cost.Nodes.Select(n => n.Macs).ToArray();
        Assert.Equal(8 * 5 * 6 * 4 * 9, macs[0]);
        Assert.Equal(8 * 5 * 4 * 8 * 9, macs[1]);
        Assert.Equal(8 * 3 * 4 * 1 * 9, macs[2]);   // depthwise: one input channel per output
        Assert.Equal(4 * 3 * 4 * 4 * 1, macs[3]);   // two groups of 4 → 2
        Assert.Equal(2 * 2 * 3 * 4 * 4, macs[4]);
        Assert.Equal(288 + 576 + 8 + 72 + 16 + 32, cost.Params);
    }

    [Fact]
    public void PoolingWithCeilModePadsAndGlobalPooling()
    {
        var b = new OnnxModelBuilder("pools", opset: 13);
        string x = b.Input("x", 1, 3, 10, 7);
        string ceil = b.Node("MaxPool", [x], "ceil", ("kernel_shape", new long[] { 3, 3 }), ("strides", new long[] { 2, 2 }), ("ceil_mode", 1L));
        string padded = b.Node("AveragePool", [ceil], "padded", ("kernel_shape", new long[] { 2, 2 }), ("pads", new long[] { 1, 0, 1, 0 }),
                               ("strides", new long[] { 2, 1 }));
        string global = b.Node("GlobalAveragePool", [padded], "global");
        string flat = b.Node("Flatten", [global], "flat");
        b.Output(flat);
        var shapes = AssertShapesMatchOnnxRuntime(b.Build(), [1, 3, 10, 7]);
        Assert.Equal([1L, 3, 5, 3], shapes["ceil"].Shape);
        Assert.Equal([1L, 3], shapes["flat"].Shape);
    }

    [Fact]
    public void ClassifierHeadsReshapeConcatAndBroadcasting()
    {
        var b = new OnnxModelBuilder("heads", opset: 13);
        string x = b.Input("x", 2, 6, 4, 4);
        string half = b.Node("Mul", [x, b.Initializer("scale", [1, 6, 1, 1], Weights(6))], "scaled");
        string joined = b.Node("Concat", [x, half], "joined", ("axis", -3L));
        string grouped = b.Node("Reshape", [joined, b.Int64Initializer("shape", [3], [0, 12, -1])], "grouped");
        string rows = b.Node("Flatten", [joined], "rows", ("axis", 2L));
        b.Output(rows);
        string reshaped = b.Node("Flatten", [grouped], "reshaped");
        string gemm = b.Node("Gemm", [reshaped, b.Initializer("fc", [5, 192], Weights(960)), b.Initializer("fcb", [5], Weights(5))], "gemm",
                             ("transB", 1L));
        string batched = b.Node("Reshape", [gemm, b.Int64Initializer("shape3", [3], [2, 1, 5])], "batched");
        string matmul = b.Node("MatMul", [batched, b.Initializer("proj", [5, 3], Weights(15))], "matmul");
        string biased = b.Node("Add", [matmul, b.Initializer("bias", [3], Weights(3))], "biased");
        string softmax = b.Node("Softmax", [biased], "softmax", ("axis", -1L));
        b.Output(softmax);
        var model = b.Build();
        var shapes = AssertShapesMatchOnnxRuntime(model, [2, 6, 4, 4]);
        Assert.Equal([2L, 12, 16], shapes["grouped"].Shape);
        Assert.Equal([24L, 16], shapes["rows"].Shape); // Flatten is always 2-D
        Assert.Equal([2L, 192], shapes["reshaped"].Shape);
        Assert.Equal([2L, 1, 3], shapes["softmax"].Shape);

        var cost = ModelCost.Analyze(model, [2, 6, 4, 4]);
        Assert.Equal(2 * 5 * 192 + 2 * 3 * 5, cost.Macs);
        Assert.Equal(6 + 960 + 5 + 15 + 3, cost.Params); // the Mul scale and Add bias are learnable; shapes are not
    }

    [Fact]
    public void PeakActivationMemoryFollowsLiveTensors()
    {
        // x(4 KiB) → a → b; c = a + b: a stays alive until the Add, so the peak holds a, b and c at once.
        var b = new OnnxModelBuilder("live", opset: 13);
        string x = b.Input("x", 1, 1, 32, 32);
        string a = b.Node("Relu", [x], "a");
        string bb = b.Node("Sigmoid", [a], "b");
        string c = b.Node("Add", [a, bb], "c");
        b.Output(c);
        var cost = ModelCost.Analyze(b.Build());
        const long tensor = 32 * 32 * 4;
        Assert.Equal(3 * tensor, cost.ActivationBytes);
        Assert.Equal(3 * tensor, cost.PeakActivationBytes); // x is freed after a; a, b, c coexist at the Add
    }

    [Fact]
    public void SymbolicBatchIsOneAndOtherSymbolicDimensionsNeedAShape()
    {
        var b = new OnnxModelBuilder("symbolic", opset: 13);
        string x = b.Input("x", -1, 3, 8, 8);
        b.Output(b.Node("Relu", [x], "r"));
        var model = b.Build();
        Assert.Equal([1L, 3, 8, 8], ModelCost.Analyze(model).InputShape);

        model.Graph.Input[0].Type.TensorType.Shape.Dim[2] = new TensorShapeProto.Types.Dimension { DimParam = "height" };
        var error = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(model));
        Assert.Contains("symbolic dimension 'height' at axis 2", error.Message);
        Assert.Contains("`paretoprune inspect MODEL --input-shape 1x3x32x32`", error.Message); // the one command that takes a shape
        Assert.Contains("export the model with a fixed input height and width", error.Message);
        Assert.Equal([1L, 3, 5, 8], ModelCost.Analyze(model, [1, 3, 5, 8]).InputShape);

        var mismatch = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(model, [1, 4, 5, 8]));
        Assert.Contains("has 3 channels at axis 1, but the given shape says 4", mismatch.Message);
    }

    [Fact]
    public void ParseShapeAcceptsCommonSpellingsAndRejectsNonsense()
    {
        Assert.Equal([1L, 3, 32, 32], ShapeInference.ParseShape("1x3x32x32"));
        Assert.Equal([1L, 3, 32, 32], ShapeInference.ParseShape("1,3,32,32"));
        Assert.Throws<FormatException>(() => ShapeInference.ParseShape("1x0x3"));
        Assert.Throws<FormatException>(() => ShapeInference.ParseShape("abc"));
    }
}

/// <summary>Bad models get errors that name the node, the op and the reason.</summary>
public class BadModelTests
{
    static ModelProto TwoNodeModel(string secondOp, string domain = "")
    {
        var b = new OnnxModelBuilder("bad", opset: 13);
        string x = b.Input("x", 1, 3, 8, 8);
        string r = b.Node("Relu", [x], "first");
        string y = b.Node(secondOp, [r], "second");
        b.Output(y);
        var model = b.Build();
        model.Graph.Node[1].Domain = domain;
        return model;
    }

    [Fact]
    public void AnUnsupportedOpIsNamedWithItsNode()
    {
        var error = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(TwoNodeModel("Einsum")));
        Assert.Equal("second", error.NodeName);
        Assert.Equal("Einsum", error.OpType);
        // Without rules, and ONNX Runtime cannot run it (Einsum without an equation) to tell its shapes.
        Assert.Contains("node 'second' (Einsum): op 'Einsum' has no rules here, and ONNX Runtime could not tell its output shapes", error.Message);
    }

    [Fact]
    public void ACustomDomainOpIsRefused()
    {
        var error = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(TwoNodeModel("Relu", "com.microsoft")));
        Assert.Contains("node 'second' (Relu): op 'Relu' of domain 'com.microsoft' has no rules here, and ONNX Runtime could not", error.Message);
    }

    [Fact]
    public void ExternalTensorDataIsRefusedNamingTheTensor()
    {
        var b = new OnnxModelBuilder("external", opset: 13);
        string x = b.Input("x", 1, 2, 4, 4);
        b.Output(b.Node("Conv", [x, b.Initializer("conv.weight", [2, 2, 1, 1], [1, 0, 0, 1])], "conv"));
        var model = b.Build();
        var weight = model.Graph.Initializer[0];
        weight.RawData = ByteString.Empty;
        weight.DataLocation = TensorProto.Types.DataLocation.External;
        weight.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = "weights.bin" });
        var error = Assert.Throws<OnnxModelException>(() => OnnxTensors.ReadFloats(weight));
        Assert.Contains("tensor 'conv.weight' keeps its data in an external file", error.Message);
    }

    [Fact]
    public void ChannelMismatchNamesTheConvolution()
    {
        var b = new OnnxModelBuilder("mismatch", opset: 13);
        string x = b.Input("x", 1, 3, 8, 8);
        b.Output(b.Node("Conv", [x, b.Initializer("w", [4, 2, 3, 3], new float[72])], "conv1"));
        var error = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(b.Build()));
        Assert.Contains("node 'conv1' (Conv): weight expects 2 input channels", error.Message);
        Assert.Contains("the input has 3", error.Message);
    }

    [Fact]
    public void ARuntimeReshapeTargetIsExplained()
    {
        var b = new OnnxModelBuilder("dynamic", opset: 13);
        string x = b.Input("x", 1, 3, 8, 8);
        string y = b.Input("target", 2);
        b.Output(b.Node("Reshape", [x, y], "reshape"));
        var model = b.Build();
        model.Graph.Input[1].Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Int64;
        var error = Assert.Throws<OnnxModelException>(() => ModelCost.Analyze(model, null));
        Assert.Contains("node 'reshape' (Reshape): its target shape is computed at run time", error.Message);
    }

    [Fact]
    public void GarbageBytesAndEmptyGraphsAreNotModels()
    {
        string path = Path.Combine(Path.GetTempPath(), $"garbage-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, [0xff, 0xff, 0xff, 0x01, 0x02]);
        try
        {
            var error = Assert.Throws<OnnxModelException>(() => OnnxModel.Load(path));
            Assert.Contains(path, error.Message);
            Assert.Contains("not a valid ONNX model", error.Message);
        }
        finally { File.Delete(path); }

        var empty = Assert.Throws<OnnxModelException>(() => OnnxModel.Parse(new ModelProto { Graph = new GraphProto() }.ToByteArray(), "empty.onnx"));
        Assert.Contains("'empty.onnx' is not an ONNX model: it has no graph or an empty one", empty.Message);
        Assert.Throws<FileNotFoundException>(() => OnnxModel.Load("/nonexistent/model.onnx"));
    }

    [Fact]
    public void DanglingInputsAndCyclesAreFound()
    {
        var dangling = TwoNodeModel("Relu");
        dangling.Graph.Node[1].Input[0] = "nowhere";
        var error = Assert.Throws<OnnxModelException>(() => new OnnxGraph(dangling));
        Assert.Contains("node 'second' (Relu): input 'nowhere' is neither a graph input, an initializer nor any node's output", error.Message);

        var cycle = TwoNodeModel("Relu");
        cycle.Graph.Node[0].Input[0] = cycle.Graph.Node[1].Output[0];
        var cycleError = Assert.Throws<OnnxModelException>(() => new OnnxGraph(cycle));
        Assert.Contains("cycle", cycleError.Message);
    }

    [Fact]
    public void SaveIsAtomicAndRoundTrips()
    {
        var model = TwoNodeModel("Sigmoid");
        OnnxModel.SetMetadata(model, "class_names", "a,b");
        string path = Path.Combine(Path.GetTempPath(), $"saved-{Guid.NewGuid():N}", "m.onnx");
        try
        {
            OnnxModel.Save(model, path);
            var loaded = OnnxModel.Load(path);
            Assert.Equal(model, loaded);
            Assert.Equal("a,b", OnnxModel.GetMetadata(loaded, "class_names"));
            Assert.Single(Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temporary left behind
        }
        finally { Directory.Delete(Path.GetDirectoryName(path)!, true); }
    }
}
