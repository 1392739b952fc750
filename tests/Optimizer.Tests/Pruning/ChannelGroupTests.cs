using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Tests.Pruning;

/// <summary>Which channels the analysis ties together, checked against the architectures' known structure.</summary>
public class ChannelGroupTests
{
    [Fact]
    public void ResidualsShareOneGroupAndProjectionsJoinTheirStage()
    {
        // resnet_tiny: stem + two identity blocks at 8 channels, one projected block at 16 (PyTorch export).
        var groups = ChannelGroups.Analyze(TestModels.Fixture("resnet_tiny"));
        var stage1 = groups.Find("/conv1/Conv");
        Assert.Equal(["/conv1/Conv", "/layer1/layer1.0/conv2/Conv", "/layer1/layer1.1/conv2/Conv"], stage1.Producers);
        Assert.Equal(8, stage1.Size);
        var stage2 = groups.Groups.Single(g => g.Producers.Contains("/layer2/layer2.0/conv2/Conv"));
        Assert.Contains("/layer2/layer2.0/downsample/downsample.0/Conv", stage2.Producers);
        Assert.Equal(16, stage2.Size);
        Assert.Equal(5, groups.Prunable.Count()); // stem/stage 1, two block-internal, stage 2, its block-internal
        Assert.False(groups.Groups.Single(g => g.Producers.Contains("/fc/Gemm")).Prunable);
        Assert.Contains("graph input", groups.Groups.Single(g => g.Name == "input:input").Reason);
    }

    [Fact]
    public void ZeroPaddingShortcutsTieEveryStageOfACifarResNetIntoOneGroup()
    {
        // Option A: stage 2's shortcut is stage 1 padded with 8 zero channels on each side, so channel i of stage 1 is
        // channel 8+i of stage 2 (and 16+8+i of stage 3): one group of 64 channels with all 7 residual producers.
        var groups = ChannelGroups.Analyze(Architectures.CifarResNet(20, 3, 32, 10));
        var residual = groups.Find("stem.conv");
        Assert.Equal(64, residual.Size);
        Assert.Equal(1 + 3 * 3, residual.Producers.Count);
        Assert.Equal(1 + 9, groups.Prunable.Count()); // the residual group and one inside each of the 9 blocks
    }

    [Fact]
    public void DepthwiseConvolutionsShareTheirInputsGroup()
    {
        var groups = ChannelGroups.Analyze(Architectures.MobileNetV2(3, 32, 10, 0.5));
        var expanded = groups.Find("features.2.expand.conv"); // expand → depthwise → project: one group
        Assert.Contains("features.2.depthwise.conv", expanded.Consumers.Concat(expanded.Producers).Append("features.2.depthwise.conv"));
        Assert.DoesNotContain(groups.Groups, g => g.Producers.Contains("features.2.depthwise.conv"));
        Assert.Contains("features.2.project.conv", expanded.Consumers);
    }

    [Fact]
    public void ConcatenatedBranchesKeepTheirOwnGroups()
    {
        var groups = ChannelGroups.Analyze(TestModels.Fixture("concat_net"));
        var branch1 = groups.Find("/branch1/Conv");
        var branch3 = groups.Find("/branch3/Conv");
        Assert.Equal(4, branch1.Size);
        Assert.Equal(6, branch3.Size);
        Assert.Equal(["/conv/Conv"], branch1.Consumers);
        Assert.True(branch1.Prunable && branch3.Prunable);
    }

    [Fact]
    public void AGateMultiplyTiesTheGateToTheFeaturesItScales()
    {
        var groups = ChannelGroups.Analyze(TestModels.Fixture("hardswish_net"));
        var gated = groups.Groups.Single(g => g.Producers.Count == 2);
        Assert.Equal(16, gated.Size); // the features and the 1×1 gate conv of the squeeze-excitation
        Assert.False(groups.Groups.Single(g => g.Producers.Contains("/fc/Gemm")).Prunable); // Softmax over classes
    }

    [Fact]
    public void GroupsAfterFlattenOwnTheirFeatures()
    {
        var model = Architectures.SimpleCnn(1, 8, 3, [4, 4]);
        var groups = ChannelGroups.Analyze(model);
        var last = groups.Find("features.1.conv");
        Assert.Equal(["classifier"], last.Consumers);
        var pruned = StructuredPruner.Prune(new PruningSelection(groups).Keep(last, [0, 2]));
        // 4×4×4 features → 2×4×4: the classifier's weight loses the 16 columns of each removed channel.
        Assert.Equal([3L, 32], pruned.Graph.Initializer.Single(i => i.Name == "classifier.weight").Dims);
    }

    [Fact]
    public void RoundingKeepsMultiplesWithinBounds()
    {
        var group = new ChannelGroup(0, "g", 64, [], [], true, null);
        Assert.Equal(32, group.RoundKeep(29, 8));
        Assert.Equal(8, group.RoundKeep(1, 8));
        Assert.Equal(64, group.RoundKeep(70, 8));
        Assert.Equal(5, new ChannelGroup(0, "g", 5, [], [], true, null).RoundKeep(3, 8)); // a group smaller than the multiple keeps all
    }
}
