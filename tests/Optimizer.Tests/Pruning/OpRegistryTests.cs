using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Pruning;

/// <summary>The op registry is complete: every op it names has its TorchSharp side and runs through the fixture checks;
/// an op it does not name is pinned, never refused, where ONNX Runtime runs the model.</summary>
public class OpRegistryTests
{
    [Fact]
    public void TheTrainingEngineRunsExactlyTheRegisteredOps() =>
        Assert.Equal(OpRegistry.OpTypes.Order(), Ops.OpTypes.Order());

    [Fact]
    public void EachOpTypeHasOneRule()
    {
        var names = OpRegistry.Rules.SelectMany(r => r.OpTypes).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.All(names, n => Assert.NotNull(OpRegistry.Find(n)));
    }

    [Fact]
    public void EveryRegisteredOpRunsThroughTheFixtureChecks()
    {
        // The models StructuredPruningTests and OnnxModuleTests check: counts, keep-all, masked equality, training engine.
        var exercised = TestModels.AllNames().SelectMany(n => TestModels.Load(n).Graph.Node.Select(node => node.OpType)).ToHashSet();
        Assert.Empty(OpRegistry.OpTypes.Except(exercised).Order());
    }

    /// <summary>conv1 → Softplus (no rules) → conv2 → pool → fc: Softplus's channels stay, conv2's filters are pruned.</summary>
    static ModelProto WithAnOpWithoutRules()
    {
        var random = new Random(3);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var b = new OnnxModelBuilder("unknown-op", 13);
        string x = b.Input("input", -1, 3, 8, 8);
        x = b.Node("Conv", [x, b.Initializer("w1", [6, 3, 3, 3], Values(162))], "conv1", ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Softplus", [x], "softplus");
        x = b.Node("Conv", [x, b.Initializer("w2", [8, 6, 3, 3], Values(432)), b.Initializer("b2", [8], Values(8))], "conv2");
        x = b.Node("Relu", [x], "relu");
        x = b.Node("GlobalAveragePool", [x], "pool");
        x = b.Node("Flatten", [x], "flatten");
        x = b.Node("Gemm", [x, b.Initializer("fc.w", [4, 8], Values(32))], "fc", ("transB", 1L));
        b.Output(x, -1, 4);
        return b.Build();
    }

    [Fact]
    public void AnOpWithoutRulesIsPinnedAndTheRestIsPruned()
    {
        var model = WithAnOpWithoutRules();
        var cost = ModelCost.Analyze(model); // Softplus's shape from ONNX Runtime
        Assert.Equal(6 * 27 * 64 + 8 * 54 * 36 + 32, cost.Macs);
        Assert.Equal(new long[] { 1, 6, 8, 8 }, cost.Nodes.Single(n => n.OpType == "Softplus").OutputShape);

        var groups = ChannelGroups.Analyze(model);
        var conv1 = groups.Find("conv1");
        Assert.False(conv1.Prunable);
        Assert.Contains("Softplus", conv1.Reason);
        Assert.True(groups.Find("conv2").Prunable);

        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5);
        var pruned = StructuredPruner.Prune(selection);
        var shape = new long[] { 2, 3, 8, 8 };
        var input = TestModels.RandomInput(shape);
        TestModels.AssertClose(TestModels.Run(ChannelMasking.Mask(selection), input, shape), TestModels.Run(pruned, input, shape));
        Assert.Equal(PrunedCost.Predict(selection).Macs, ModelCost.Analyze(pruned).Macs);

        var error = Assert.Throws<OnnxModelException>(() => new OnnxModule(model));
        Assert.Contains("Softplus", error.Message);
        Assert.Contains("training engine", error.Message);
    }
}
