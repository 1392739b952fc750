using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Devices.Tests;

/// <summary>The agent's memory estimate, held to hand-computed sizes and to the Objectives' own shape inference.</summary>
public class ModelMemoryTests
{
    const long GiB = 1L << 30;

    /// <summary>The 211-byte bomb of the fault matrix: ConstantOfShape to [32768, 32768] floats.</summary>
    internal static byte[] ConstantOfShapeBomb(long side = 32768)
    {
        var b = new OnnxModelBuilder("bomb", 13);
        string x = b.Input("input", 1, 4);
        string big = b.Node("ConstantOfShape", [b.Int64Initializer("shape", [2], [side, side])], "make_big");
        string y = b.Node("ReduceSum", [big], "sum", ("keepdims", 0L));
        b.Output(b.Node("Add", [x, y], "out"), 1, 4);
        return OnnxModel.ToBytes(b.Build());
    }

    [Fact]
    public void TheConstantOfShapeBombIsSizedAndNamed()
    {
        byte[] model = ConstantOfShapeBomb();
        Assert.True(model.Length < 400, $"{model.Length} bytes");
        var estimate = ModelMemory.Estimate(model, [1, 4]);
        Assert.True(estimate.Complete, string.Join(", ", estimate.Unresolved));
        Assert.Equal(4 * GiB, estimate.Largest!.Bytes);
        Assert.Equal([32768L, 32768], estimate.Largest.Shape);
        Assert.Equal(("make_big", "ConstantOfShape", "float"), (estimate.Largest.Node, estimate.Largest.Op, estimate.Largest.Type));
        Assert.True(estimate.PeakBytes >= 4 * GiB);
        Assert.Contains("'make_big' (ConstantOfShape) makes a tensor of [32768 × 32768] float, 4.0 GiB", estimate.DescribeLargest());
    }

    [Fact]
    public void ShapeArithmeticIsFollowedByValue()
    {
        // x [N, 3, H, W]; its batch read with Shape → Gather, a target built with Concat; Reshape, Tile, Expand, Resize, Pad.
        var b = new OnnxModelBuilder("arith", 13);
        string x = b.Input("x", -1, 3, -1, -1);
        string shape = b.Node("Shape", [x], "shape");
        string batch = b.Node("Gather", [shape, b.Int64Initializer("zero", [1], [0])], "batch", ("axis", 0L));
        string target = b.Node("Concat", [batch, b.Int64Initializer("minus_one", [1], [-1])], "target", ("axis", 0L));
        b.Node("Reshape", [x, target], "flat");
        string tiled = b.Node("Tile", [x, b.Int64Initializer("repeats", [4], [1, 2, 3, 4])], "tiled");
        string doubled = b.Node("Mul", [shape, b.Int64Initializer("two", [1], [2])], "doubled");
        b.Node("Expand", [b.Initializer("one", [1], [1f]), doubled], "expanded");
        b.Node("Resize", [x, "", b.Initializer("scales", [4], [1f, 1f, 2f, 0.5f])], "resized");
        b.Node("Pad", [tiled, b.Int64Initializer("pads", [8], [0, 0, 1, 2, 0, 0, 3, 4])], "padded");
        b.Output("padded", -1, 3, -1, -1);
        var shapes = ModelMemory.Shapes(OnnxModel.ToBytes(b.Build()), [2, 3, 10, 20]);
        Assert.Equal([2L, 600], shapes["flat"]);
        Assert.Equal([2L, 6, 30, 80], shapes["tiled"]);
        Assert.Equal([4L, 6, 20, 40], shapes["expanded"]);
        Assert.Equal([2L, 3, 20, 10], shapes["resized"]);
        Assert.Equal([2L, 6, 34, 86], shapes["padded"]);
    }

    [Fact]
    public void IntermediatesAreFreedAfterTheirLastConsumer()
    {
        // A chain of ReLUs over 1000 floats: at any node its input and output are alive, besides the caller's input.
        var b = new OnnxModelBuilder("chain", 13);
        string y = b.Input("x", 1, 1000);
        for (int i = 0; i < 6; i++) y = b.Node("Relu", [y], $"relu{i}");
        b.Output(y, 1, 1000);
        byte[] model = OnnxModel.ToBytes(b.Build());
        var estimate = ModelMemory.Estimate(model, [1, 1000]);
        Assert.Equal(3 * 4000, estimate.ActivationBytes);
        Assert.Equal(0, estimate.WeightBytes);
        Assert.Equal(model.Length + 3 * 4000, estimate.PeakBytes);
    }

    [Fact]
    public void AnOpItDoesNotFollowIsNamedNotGuessed()
    {
        // NonZero's size depends on the data: the estimate names it and leaves what follows from it out.
        var b = new OnnxModelBuilder("nonzero", 13);
        string x = b.Input("x", 1, 8);
        string indices = b.Node("NonZero", [x], "where_nonzero");
        string big = b.Node("ConstantOfShape", [b.Node("Shape", [indices], "count")], "from_count");
        b.Output(b.Node("Add", [x, b.Node("ReduceSum", [b.Node("Cast", [big], "as_float", ("to", 1L))], "total", ("keepdims", 0L))], "out"), 1, 8);
        var estimate = ModelMemory.Estimate(OnnxModel.ToBytes(b.Build()), [1, 8]);
        Assert.False(estimate.Complete);
        Assert.Equal(["where_nonzero (NonZero)"], estimate.Unresolved);
    }

    [Fact]
    public void AbsurdNodesAreSizedAsEnormousOrNamedNeverThrown()
    {
        // Dims whose product passes long.MaxValue (in a node nothing reads), and a convolution with a stride of 0.
        var b = new OnnxModelBuilder("absurd", 13);
        string x = b.Input("input", 1, 1, 8, 8);
        b.Node("ConstantOfShape", [b.Int64Initializer("shape", [3], [1L << 40, 1L << 40, 1L << 40])], "too_big");
        string y = b.Node("Conv", [x, b.Initializer("w", [1, 1, 3, 3], new float[9])], "zero_stride", ("strides", new long[] { 0, 0 }));
        b.Output(y, 1, 1, 8, 8);
        var estimate = ModelMemory.Estimate(OnnxModel.ToBytes(b.Build()), [1, 1, 8, 8]);
        Assert.Equal(long.MaxValue, estimate.PeakBytes); // "more than any budget", not a sum wrapped to a small number
        Assert.Equal("too_big", estimate.Largest!.Node);

        var conv = new OnnxModelBuilder("conv", 13);
        string input = conv.Input("input", 1, 1, 8, 8);
        conv.Output(conv.Node("Conv", [input, conv.Initializer("w", [1, 1, 3, 3], new float[9])], "zero_stride", ("strides", new long[] { 0, 0 })), 1, 1, 8, 8);
        Assert.Equal(["zero_stride (Conv)"], ModelMemory.Estimate(OnnxModel.ToBytes(conv.Build()), [1, 1, 8, 8]).Unresolved);
    }

    [Fact]
    public void NotAnOnnxFileIsAFormatError()
    {
        Assert.Throws<FormatException>(() => ModelMemory.Estimate("not a model at all"u8, [1]));
    }

    /// <summary>Every shipped model and fixture: each tensor the estimate follows has the shape the Objectives' inference gives.</summary>
    [Fact]
    public void ShapesAgreeWithTheObjectivesInferenceOnEveryShippedModel()
    {
        string root = RepositoryRoot();
        var files = Directory.GetFiles(Path.Combine(root, "models"), "*.onnx").Concat(Directory.GetFiles(Path.Combine(root, "tests", "fixtures", "onnx"), "*.onnx")).ToList();
        Assert.True(files.Count >= 10);
        int compared = 0;
        foreach (string file in files)
        {
            var proto = OnnxModel.Parse(File.ReadAllBytes(file), file);
            var graph = new OnnxGraph(proto);
            var input = graph.Inputs.Single(i => proto.Graph.Initializer.All(t => t.Name != i.Name));
            var declared = input.Type.TensorType.Shape.Dim.Select(d => d.DimValue > 0 ? d.DimValue : 1).ToArray();
            declared[0] = 2; // a batch of two
            var expected = ShapeInference.Infer(graph, new Dictionary<string, long[]> { [input.Name] = declared });
            var estimate = ModelMemory.Estimate(File.ReadAllBytes(file), declared);
            Assert.True(estimate.Complete, $"{Path.GetFileName(file)}: {string.Join(", ", estimate.Unresolved)}");
            var shapes = ModelMemory.Shapes(File.ReadAllBytes(file), declared);
            foreach (var node in graph.Nodes)
                foreach (string output in node.Output.Where(o => o.Length > 0))
                {
                    Assert.True(shapes.ContainsKey(output), $"{Path.GetFileName(file)}: {output} ({node.OpType}) not followed");
                    Assert.True(expected[output].Shape.SequenceEqual(shapes[output]),
                        $"{Path.GetFileName(file)}: {output} ({node.OpType}) is [{string.Join(", ", shapes[output])}], the Objectives' inference says [{string.Join(", ", expected[output].Shape)}]");
                    compared++;
                }
            // The largest tensor is the largest the Objectives' inference knows of among node outputs.
            long largest = graph.Nodes.Where(n => n.OpType != "Constant").SelectMany(n => n.Output).Where(o => o.Length > 0).Max(o => expected[o].Bytes);
            Assert.Equal(largest, estimate.Largest!.Bytes);
        }
        Assert.True(compared > 300, $"{compared} tensors compared");
    }

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "models")) && Directory.Exists(Path.Combine(dir.FullName, "tests", "fixtures")))
                return dir.FullName;
        throw new DirectoryNotFoundException("the repository root (with models/ and tests/fixtures/) above " + AppContext.BaseDirectory);
    }
}
