using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

public class ActivationImportanceTests
{
    /// <summary>conv1 (4 filters, 1×1, given weights and biases) → ReLU → conv2 (3 filters) → ReLU → GAP → Gemm (10 classes).</summary>
    static ModelProto Model(float[] conv1Weight, float[]? conv1Bias, bool biases = true, int seed = 4)
    {
        var random = new Random(seed);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.3)).ToArray();
        var b = new OnnxModelBuilder("probe", 13);
        string x = b.Input("x", -1, 1, 28, 28);
        string[] conv1 = conv1Bias is null ? [x, b.Initializer("w1", [4, 1, 1, 1], conv1Weight)] : [x, b.Initializer("w1", [4, 1, 1, 1], conv1Weight), b.Initializer("b1", [4], conv1Bias)];
        string h = b.Node("Relu", [b.Node("Conv", conv1, "conv1")], "relu1");
        string[] conv2 = biases ? [h, b.Initializer("w2", [3, 4, 3, 3], Random(108)), b.Initializer("b2", [3], Random(3))] : [h, b.Initializer("w2", [3, 4, 3, 3], Random(108))];
        h = b.Node("Relu", [b.Node("Conv", conv2, "conv2", ("pads", new long[] { 1, 1, 1, 1 }))], "relu2");
        h = b.Node("Flatten", [b.Node("GlobalAveragePool", [h], "gap")], "flatten");
        string[] gemm = biases ? [h, b.Initializer("fc", [10, 3], Random(30)), b.Initializer("fcb", [10], Random(10))] : [h, b.Initializer("fc", [10, 3], Random(30))];
        b.Output(b.Node("Gemm", gemm, "fc", ("transB", 1L)), -1, 10);
        return b.Build();
    }

    static Dataset Data => TrainerTests.Images(64);

    [Fact]
    public void ApozAndMeanActivationMeasureWhatTheChannelsDo()
    {
        // Zero weights: channel c outputs relu(bias c) everywhere, so mean activation is exactly that and 1 − APoZ is 1 or 0.
        var groups = ChannelGroups.Analyze(Model([0, 0, 0, 0], [0.5f, -1f, 2f, 0.25f]));
        var group = groups.Find("conv1");
        Assert.Equal([0.5, 0, 2, 0.25], new ActivationImportance(ActivationImportance.Criterion.MeanActivation, Data, batches: 2, batchSize: 32).Score(groups, group)
                                          .Select(v => Math.Round(v, 6)));
        Assert.Equal([1.0, 0, 1, 1], new ActivationImportance(ActivationImportance.Criterion.Apoz, Data, batches: 2, batchSize: 32).Score(groups, group));
    }

    [Fact]
    public void TaylorEqualsActivationTimesGradientComputedByHand()
    {
        var model = Model([1f, -0.5f, 0.8f, 0.3f], [0.1f, 0.2f, -0.1f, 0.05f]);
        var groups = ChannelGroups.Analyze(model);
        var scores = new ActivationImportance(ActivationImportance.Criterion.Taylor, Data, batches: 1, batchSize: 64).Score(groups, groups.Find("conv1"));

        // By hand, with TorchSharp ops: the conv1 output a, dLoss/da, |mean over pixels of a·g| averaged over images.
        var graph = new OnnxGraph(model);
        Tensor W(string name) => tensor(OnnxTensors.ReadFloats(graph.Constant(name)!), graph.Constant(name)!.Dims.ToArray());
        var batch = Data.Batches(64, shuffle: true, seed: 0).First();
        var (x, y) = (tensor(batch.Pixels, [64, 1, 28, 28]), tensor(batch.Labels.Select(l => (long)l).ToArray(), ScalarType.Int64));
        var a = nn.functional.conv2d(x, W("w1"), W("b1")).requires_grad_(true); // a leaf: the gradient is taken with respect to it
        var h = nn.functional.relu(nn.functional.conv2d(nn.functional.relu(a), W("w2"), W("b2"), padding: [1, 1])).mean([2, 3]);
        var loss = nn.functional.cross_entropy(nn.functional.linear(h, W("fc"), W("fcb")), y, reduction: nn.Reduction.Sum);
        var g = torch.autograd.grad([loss], [a])[0];
        var expected = (a * g).mean([2, 3]).abs().mean([0]).data<float>().ToArray();
        for (int c = 0; c < 4; c++) Assert.Equal(expected[c], scores[c], 5);
        Assert.True(scores.All(s => s > 0));
    }

    [Fact]
    public void LrpConservesTheTrueClassLogitThroughEveryLayer()
    {
        // Without biases and with a tiny ε, relevance is conserved: each layer's channels share the true-class logit.
        var model = Model([1f, 0.5f, 0.8f, 0.3f], null, biases: false);
        var groups = ChannelGroups.Analyze(model);
        var lrp = new ActivationImportance(ActivationImportance.Criterion.Lrp, Data, batches: 1, batchSize: 64, epsilon: 1e-9);
        double first = lrp.Score(groups, groups.Find("conv1")).Sum();
        double second = lrp.Score(groups, groups.Find("conv2")).Sum();

        using var module = new OnnxModule(model);
        module.eval();
        var batch = Data.Batches(64, shuffle: true, seed: 0).First();
        using var noGrad = no_grad();
        var logits = module.forward(tensor(batch.Pixels, [64, 1, 28, 28]));
        double meanTrueLogit = batch.Labels.Select((label, n) => (double)logits[n, label].item<float>()).Average();
        Assert.Equal(meanTrueLogit, second, 3);
        Assert.Equal(meanTrueLogit, first, 3);
    }

    [Fact]
    public void DataDrivenCriteriaPruneThroughTheSameSelection()
    {
        var model = Model([1f, -0.5f, 0.8f, 0.3f], [0.1f, 0.2f, -0.1f, 0.05f]);
        var groups = ChannelGroups.Analyze(model);
        foreach (string name in ActivationImportance.Names)
        {
            var importance = ActivationImportance.Parse(name, Data, batches: 1)!;
            var selection = new ChannelSelection(groups, importance).KeepCounts(new Dictionary<int, int> { [groups.Find("conv1").Index] = 2 });
            var pruned = StructuredPruner.Prune(selection);
            Assert.Equal([2L, 1, 1, 1], pruned.Graph.Initializer.Single(i => i.Name == "w1").Dims);
        }
        Assert.Null(ActivationImportance.Parse("nonsense", Data));
    }
}
