using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Tests.Pruning;

public class UnstructuredPruningTests
{
    [Fact]
    public void GlobalMagnitudePruningZeroesExactlyTheSmallestWeights()
    {
        var model = Architectures.CifarResNet(20, 3, 16, 10, seed: 2);
        var (pruned, layers) = UnstructuredPruner.Prune(model, 0.6);
        long total = layers.Sum(l => l.Elements), zeros = layers.Sum(l => l.Zeros);
        Assert.Equal(Math.Round(0.6 * total), zeros);

        // Every surviving weight is at least as large as every removed one.
        var before = new OnnxGraph(model);
        var after = new OnnxGraph(pruned);
        var all = layers.SelectMany(l => OnnxTensors.ReadFloats(before.Constant(l.Weight)!)
                                         .Zip(OnnxTensors.ReadFloats(after.Constant(l.Weight)!))).ToList();
        float largestRemoved = all.Where(p => p.Second == 0).Max(p => Math.Abs(p.First));
        float smallestKept = all.Where(p => p.Second != 0).Min(p => Math.Abs(p.First));
        Assert.True(largestRemoved <= smallestKept);
        Assert.All(all.Where(p => p.Second != 0), p => Assert.Equal(p.First, p.Second));

        // Same dense size and MACs; smaller once compressed.
        Assert.Equal(ModelCost.Analyze(model).Macs, ModelCost.Analyze(pruned).Macs);
        Assert.True(ModelSize.Compressed(OnnxModel.ToBytes(pruned)) < 0.7 * ModelSize.Compressed(OnnxModel.ToBytes(model)));
    }

    [Fact]
    public void PerLayerSparsityAndSkippingTheEnds()
    {
        var model = Architectures.SimpleCnn(1, 8, 4, [4, 4], seed: 3);
        var (_, layers) = UnstructuredPruner.Prune(model, 0.5, SparsityScope.PerLayer, skipFirstAndLast: true);
        Assert.Equal(0, layers[0].Zeros);   // first conv left dense
        Assert.Equal(0, layers[^1].Zeros);  // classifier left dense
        Assert.Equal(Math.Round(0.5 * layers[1].Elements), layers[1].Zeros);
        Assert.Contains("must be in [0, 1)", Assert.Throws<ArgumentException>(() => UnstructuredPruner.Prune(model, 1.2)).Message);
    }
}
