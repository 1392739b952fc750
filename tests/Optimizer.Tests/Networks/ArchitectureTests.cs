using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Optimizer.Tests.Networks;

public class ArchitectureTests
{
    /// <summary>Published MAC counts: Li et al. 2017 (VGG-16 CIFAR, ResNet-56/110), Sandler et al. 2018, He et al. 2016.</summary>
    [Theory]
    [InlineData("vgg16", 3, 32, 10, 3.13e8)]
    [InlineData("resnet56", 3, 32, 10, 1.25e8)]
    [InlineData("resnet110", 3, 32, 10, 2.53e8)]
    [InlineData("mobilenetv2", 3, 224, 1000, 3.0e8)]
    [InlineData("resnet18", 3, 224, 1000, 1.8e9)]
    public void MacsMatchThePublishedCountsWithinTwoPercent(string name, int channels, int size, int classes, double published)
    {
        var cost = ModelCost.Analyze(Architectures.Build(name, channels, size, classes));
        Assert.InRange(cost.Macs, published * 0.98, published * 1.02);
    }

    [Theory]
    [InlineData("resnet56", 0.85e6)]    // He et al. 2016: 0.85 M
    [InlineData("resnet110", 1.7e6)]    // 1.7 M
    [InlineData("resnet18", 11.69e6)]  // torchvision: 11,689,512
    [InlineData("mobilenetv2", 3.5e6)] // torchvision: 3,504,872
    public void ParameterCountsMatchThePublishedOnes(string name, double published)
    {
        int size = name is "resnet18" or "mobilenetv2" ? 224 : 32;
        int classes = name is "resnet18" or "mobilenetv2" ? 1000 : 10;
        var cost = ModelCost.Analyze(Architectures.Build(name, 3, size, classes));
        Assert.InRange(cost.Params, published * 0.98, published * 1.02);
    }

    public static IEnumerable<object[]> SmallConfigurations() =>
    [
        ["simplecnn", 1, 28, 10], ["vgg11", 1, 28, 10], ["vgg13", 3, 32, 5], ["vgg16", 3, 32, 10], ["vgg19", 1, 28, 10],
        ["resnet20", 1, 28, 10], ["resnet32", 3, 16, 4], ["resnet18", 3, 64, 7], ["resnet34", 1, 32, 3], ["mobilenetv2", 1, 28, 10],
    ];

    [Theory, MemberData(nameof(SmallConfigurations))]
    public void EveryBuilderMakesAModelOnnxRuntimeRunsForAnyChannelsSizeAndClasses(string name, int channels, int size, int classes)
    {
        var model = Architectures.Build(name, channels, size, classes, seed: 1);
        var shape = new long[] { 2, channels, size, size };
        var output = TestModels.Run(model, TestModels.RandomInput(shape), shape);
        Assert.Equal(2 * classes, output.Length);
        Assert.All(output, v => Assert.True(float.IsFinite(v)));
        Assert.Equal([1L, classes], ModelCost.Analyze(model).OutputShape);
    }

    [Fact]
    public void WeightsAreInitialisedAsDocumented()
    {
        var model = Architectures.CifarResNet(20, 3, 32, 10, seed: 5);
        var graph = new OnnxGraph(model);
        var conv = OnnxTensors.ReadFloats(graph.Constant("layer2.0.conv1.conv.weight")!); // 32×16×3×3, fan-out 32·9
        double std = Math.Sqrt(conv.Select(v => (double)v * v).Average());
        Assert.InRange(std, 0.9 * Math.Sqrt(2.0 / (32 * 9)), 1.1 * Math.Sqrt(2.0 / (32 * 9)));
        Assert.All(OnnxTensors.ReadFloats(graph.Constant("layer2.0.conv1.bn.weight")!), v => Assert.Equal(1f, v));
        Assert.All(OnnxTensors.ReadFloats(graph.Constant("layer2.0.conv1.bn.bias")!), v => Assert.Equal(0f, v));
        Assert.All(OnnxTensors.ReadFloats(graph.Constant("layer2.0.conv1.bn.running_var")!), v => Assert.Equal(1f, v));
        // Same seed, same model; another seed, other weights.
        Assert.Equal(model, Architectures.CifarResNet(20, 3, 32, 10, seed: 5));
        Assert.NotEqual(model, Architectures.CifarResNet(20, 3, 32, 10, seed: 6));
    }

    [Fact]
    public void ShortcutOptionsAPadsZeroChannelsAndBProjects()
    {
        var a = Architectures.CifarResNet(20, 3, 32, 10, Architectures.Shortcut.A);
        var b = Architectures.CifarResNet(20, 3, 32, 10, Architectures.Shortcut.B);
        Assert.Equal(2, a.Graph.Node.Count(n => n.OpType == "Pad"));
        Assert.Equal(0, b.Graph.Node.Count(n => n.OpType == "Pad"));
        var costA = ModelCost.Analyze(a);
        var costB = ModelCost.Analyze(b);
        // Option B adds two 1×1 projections (16→32 at 16×16, 32→64 at 8×8) with their BN.
        Assert.Equal(costA.Macs + 16 * 32 * 16 * 16 + 32 * 64 * 8 * 8, costB.Macs);
        Assert.Equal(costA.Params + 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64, costB.Params);
    }

    [Fact]
    public void UnknownArchitecturesAndDepthsAreRefused()
    {
        Assert.Contains("known: simplecnn", Assert.Throws<ArgumentException>(() => Architectures.Build("alexnet", 3, 32, 10)).Message);
        Assert.Contains("6n+2", Assert.Throws<ArgumentException>(() => Architectures.CifarResNet(21, 3, 32, 10)).Message);
    }
}
