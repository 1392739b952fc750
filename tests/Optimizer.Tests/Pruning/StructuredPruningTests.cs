using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Tests.Pruning;

/// <summary>
/// The three correctness properties of structured pruning, on every builder and on PyTorch-exported graphs:
/// (a) keeping everything changes nothing; (b) the pruned model equals the original with the removed channels forced
/// to zero in every tensor that carries them; (c) MACs and params fall exactly as predicted before pruning.
/// </summary>
public class StructuredPruningTests
{
    public static IEnumerable<object[]> Models()
    {
        foreach (string name in TestModels.AllNames()) yield return [name];
    }

    static ModelProto Load(string name) => TestModels.Load(name);

    [Theory, MemberData(nameof(Models))]
    public void KeepingEveryChannelChangesNothing(string name)
    {
        var model = Load(name);
        var groups = ChannelGroups.Analyze(model);
        var selection = new PruningSelection(groups);
        foreach (var group in groups.Prunable) selection.Keep(group, Enumerable.Range(0, group.Size));
        var pruned = StructuredPruner.Prune(selection);
        var shape = TestModels.InputShape(model);
        var input = TestModels.RandomInput(shape);
        Assert.Equal(TestModels.Run(model, input, shape), TestModels.Run(pruned, input, shape));
        Assert.Equal(ModelCost.Analyze(model).Macs, ModelCost.Analyze(pruned).Macs);
    }

    [Theory, MemberData(nameof(Models))]
    public void ThePrunedModelEqualsTheMaskedOriginalAndCostsWhatWasPredicted(string name)
    {
        var model = Load(name);
        var groups = ChannelGroups.Analyze(model);
        Assert.NotEmpty(groups.Prunable);
        // Random importance removes arbitrary channels (not only the last ones), about half of every group.
        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.Random, seed: 11)).Uniform(0.5);
        var pruned = StructuredPruner.Prune(selection);
        var masked = ChannelMasking.Mask(selection);

        var shape = TestModels.InputShape(model);
        for (int seed = 0; seed < 2; seed++)
        {
            var input = TestModels.RandomInput(shape, seed);
            var fromPruned = TestModels.Run(pruned, input, shape);
            TestModels.AssertClose(TestModels.Run(masked, input, shape), fromPruned);
            Assert.NotEqual(TestModels.Run(model, input, shape), fromPruned); // the removed channels did matter
        }

        var before = ModelCost.Analyze(model);
        var after = ModelCost.Analyze(pruned);
        var (macs, parameters) = PrunedCost.Predict(selection);
        Assert.Equal(macs, after.Macs);
        Assert.Equal(parameters, after.Params);
        Assert.True(after.Macs < before.Macs && after.Params < before.Params, $"MACs {before.Macs} → {after.Macs}, params {before.Params} → {after.Params}");
        Assert.True(after.SerializedBytes < before.SerializedBytes);
    }

    [Theory]
    [InlineData("resnet_tiny")]
    [InlineData("mobilenet_tiny")]
    [InlineData("concat_net")]
    public void ThePredictionWithoutPruningEqualsTheCostOfTheModel(string name)
    {
        var model = TestModels.Fixture(name);
        var (macs, parameters) = PrunedCost.Predict(new PruningSelection(ChannelGroups.Analyze(model)));
        var cost = ModelCost.Analyze(model);
        Assert.Equal(cost.Macs, macs);
        Assert.Equal(cost.Params, parameters);
    }

    [Fact]
    public void SlicingRemovesTheRightFiltersInputChannelsAndBatchNormEntries()
    {
        // conv1 (4 filters) → BN → ReLU → conv2: keeping filters 1 and 3 of conv1 keeps conv2's input channels 1 and 3.
        var b = new OnnxModelBuilder("two-convs", 13);
        string x = b.Input("x", 1, 2, 5, 5);
        float[] w1 = Enumerable.Range(0, 4 * 2 * 9).Select(i => (float)i).ToArray();
        string y = b.Node("Conv", [x, b.Initializer("w1", [4, 2, 3, 3], w1), b.Initializer("b1", [4], [10, 11, 12, 13])], "conv1",
                          ("pads", new long[] { 1, 1, 1, 1 }));
        y = b.Node("BatchNormalization", [y, b.Initializer("g", [4], [1, 2, 3, 4]), b.Initializer("beta", [4], [5, 6, 7, 8]),
                                          b.Initializer("m", [4], [0, 0, 0, 0]), b.Initializer("v", [4], [1, 1, 1, 1])], "bn");
        y = b.Node("Relu", [y], "relu");
        float[] w2 = Enumerable.Range(0, 3 * 4).Select(i => (float)i).ToArray();
        string z = b.Node("Conv", [y, b.Initializer("w2", [3, 4, 1, 1], w2)], "conv2");
        b.Output(z);
        var groups = ChannelGroups.Analyze(b.Build());
        var group = groups.Find("conv1");
        Assert.True(group.Prunable);
        Assert.Equal(4, group.Size);
        Assert.False(groups.Find("conv2").Prunable); // reaches the graph output

        var pruned = new OnnxGraph(StructuredPruner.Prune(new PruningSelection(groups).Keep(group, [1, 3])));
        float[] Values(string n) => OnnxTensors.ReadFloats(pruned.Constant(n)!);
        Assert.Equal(w1.Skip(18).Take(18).Concat(w1.Skip(54).Take(18)), Values("w1"));
        Assert.Equal([11f, 13f], Values("b1"));
        Assert.Equal([2f, 4f], Values("g"));
        Assert.Equal([6f, 8f], Values("beta"));
        Assert.Equal([1f, 3f, 5f, 7f, 9f, 11f], Values("w2")); // rows 0..2, input channels 1 and 3
        Assert.Equal([2L, 2, 3, 3], pruned.Constant("w1")!.Dims);
    }

    [Fact]
    public void ADepthwiseConvolutionKeepsItsGroupAttributeInStep()
    {
        var model = Load("mobilenetv2");
        var groups = ChannelGroups.Analyze(model);
        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.25);
        var pruned = StructuredPruner.Prune(selection);
        foreach (var node in pruned.Graph.Node.Where(n => n.OpType == "Conv" && n.GetInt("group", 1) > 1))
        {
            long weightRows = pruned.Graph.Initializer.Single(i => i.Name == node.Input[1]).Dims[0];
            Assert.Equal(weightRows, node.GetInt("group", 1));
        }
    }

    [Fact]
    public void RejectedRequestsSayWhy()
    {
        var groups = ChannelGroups.Analyze(Load("resnet20"));
        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1));
        var group = groups.Prunable.First();
        Assert.Contains("outside [1,", Assert.Throws<ArgumentException>(() => selection.KeepCounts(new Dictionary<int, int> { [group.Index] = 0 })).Message);
        Assert.Contains("must be in [0, 1)", Assert.Throws<ArgumentException>(() => selection.Uniform(1.0)).Message);
        Assert.Contains("no channel group named 'nope'", Assert.Throws<ArgumentException>(() => groups.Find("nope")).Message);
        var pinned = groups.Groups.First(g => !g.Prunable);
        var error = Assert.Throws<ArgumentException>(() => new PruningSelection(groups).Keep(pinned, [0]));
        Assert.Contains("is not prunable", error.Message);
    }
}
