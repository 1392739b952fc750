using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Pruning;

public class ImportanceTests
{
    /// <summary>conv (3 filters of 2×1×1 weights, given) → BN (γ given) → conv (1 output): one prunable group of 3.</summary>
    static ChannelGroups Model(float[] filters, float[] gamma)
    {
        var b = new OnnxModelBuilder("importance", 13);
        string x = b.Input("x", 1, 2, 4, 4);
        string y = b.Node("Conv", [x, b.Initializer("w", [3, 2, 1, 1], filters)], "conv");
        y = b.Node("BatchNormalization", [y, b.Initializer("g", [3], gamma), b.Initializer("beta", [3], new float[3]),
                                          b.Initializer("m", [3], new float[3]), b.Initializer("v", [3], [1, 1, 1])], "bn");
        b.Output(b.Node("Conv", [y, b.Initializer("w2", [1, 3, 1, 1], [1, 1, 1])], "head"));
        return ChannelGroups.Analyze(b.Build());
    }

    [Fact]
    public void NormsAndBatchNormGammaScoreEachFilter()
    {
        var groups = Model([3, -4, 1, 1, 0, -2], [0.5f, -2f, 1f]);
        var group = groups.Find("conv");
        Assert.Equal([7.0, 2.0, 2.0], new WeightImportance(WeightImportance.Criterion.L1).Score(groups, group));
        Assert.Equal([5.0, Math.Sqrt(2), 2.0], new WeightImportance(WeightImportance.Criterion.L2).Score(groups, group));
        Assert.Equal([0.5, 2.0, 1.0], new WeightImportance(WeightImportance.Criterion.BatchNormGamma).Score(groups, group));
    }

    [Fact]
    public void FpgmScoresTheFilterNearestTheMedianLowest()
    {
        // Filters (0,0), (1,0), (10,0): (1,0) is the geometric median, so it is the most replaceable.
        var groups = Model([0, 0, 1, 0, 10, 0], [1, 1, 1]);
        var scores = new WeightImportance(WeightImportance.Criterion.Fpgm).Score(groups, groups.Find("conv"));
        Assert.Equal([11.0, 10.0, 19.0], scores); // sums of distances to the other filters
        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.Fpgm));
        Assert.Equal([0, 2], selection.KeepCounts(new Dictionary<int, int> { [groups.Find("conv").Index] = 2 }).Kept[groups.Find("conv").Index]);
    }

    [Fact]
    public void CoupledLayersAreAggregated()
    {
        // resnet_tiny's stage-1 group has three producers; the mean of their filter norms is the channel's score.
        var groups = ChannelGroups.Analyze(TestModels.Fixture("resnet_tiny"));
        var group = groups.Find("/conv1/Conv");
        var graph = new OnnxGraph(groups.Model);
        string[] weights = ["conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv2.weight"];
        var perLayer = weights.Select(w => OnnxTensors.ReadFloats(graph.Constant(w)!)).ToArray();
        double[] expectedMean = Enumerable.Range(0, 8).Select(c => perLayer.Average(w =>
        {
            int row = w.Length / 8;
            return w.Skip(c * row).Take(row).Sum(v => (double)Math.Abs(v));
        })).ToArray();
        var scores = new WeightImportance(WeightImportance.Criterion.L1).Score(groups, group);
        for (int c = 0; c < 8; c++) Assert.Equal(expectedMean[c], scores[c], 4);
        var max = new WeightImportance(WeightImportance.Criterion.L1, ImportanceAggregation.Max).Score(groups, group);
        var sum = new WeightImportance(WeightImportance.Criterion.L1, ImportanceAggregation.Sum).Score(groups, group);
        for (int c = 0; c < 8; c++)
        {
            Assert.Equal(3 * expectedMean[c], sum[c], 4);
            Assert.True(max[c] >= scores[c]);
        }
    }

    [Fact]
    public void ChannelsOfAZeroPaddedStreamCountZeroWhereTheyDoNotExist()
    {
        // Option-A ResNet-20: stage 1's 16 stream channels run through all 10 producers, stage 2's next 16 through 6 and
        // the last 32 through stage 3's 3 only. A channel's mean is over all 10 producers, absent ones counting zero, so
        // early channels are not ranked below late ones because the stem's 9-weight filters have small norms.
        var model = Architectures.CifarResNet(20, 1, 28, 10);
        var groups = ChannelGroups.Analyze(model);
        var stream = groups.Find("stem.conv");
        var graph = new OnnxGraph(model);
        var expected = new double[64];
        var inStem = new HashSet<int>();
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Conv"))
        {
            string name = graph.NameOf(node);
            if (name != "stem.conv" && !name.EndsWith("conv2.conv")) continue;
            Assert.True(groups.TryGetSpace(node.Output[0], out var space));
            var weights = OnnxTensors.ReadFloats(graph.Constant(node.Input[1])!);
            int row = weights.Length / space.Ids.Length;
            for (int r = 0; r < space.Ids.Length; r++)
            {
                var (group, channel) = groups.Locate(space.Ids[r]);
                Assert.Equal(stream.Index, group);
                expected[channel] += weights.Skip(r * row).Take(row).Sum(v => (double)Math.Abs(v)) / 10;
                if (name == "stem.conv") inStem.Add(channel);
            }
        }
        Assert.Equal(16, inStem.Count);
        var scores = new WeightImportance(WeightImportance.Criterion.L1).Score(groups, stream);
        for (int c = 0; c < 64; c++) Assert.Equal(expected[c], scores[c], 4);

        // Removing 6 stream channels leaves every stage-1 channel in place.
        var kept = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1))
            .KeepCounts(new Dictionary<int, int> { [stream.Index] = 58 }).Kept[stream.Index];
        Assert.Equal(58, kept.Length);
        Assert.All(inStem, c => Assert.Contains(c, kept));
    }

    [Fact]
    public void RandomIsSeededAndGlobalRankingRespectsMinimums()
    {
        var groups = ChannelGroups.Analyze(TestModels.Fixture("resnet_tiny"));
        var group = groups.Prunable.First();
        Assert.Equal(new WeightImportance(WeightImportance.Criterion.Random, seed: 4).Score(groups, group),
                     new WeightImportance(WeightImportance.Criterion.Random, seed: 4).Score(groups, group));
        Assert.NotEqual(new WeightImportance(WeightImportance.Criterion.Random, seed: 4).Score(groups, group),
                        new WeightImportance(WeightImportance.Criterion.Random, seed: 5).Score(groups, group));

        var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Global(0.9, roundTo: 2);
        int total = groups.Prunable.Sum(g => g.Size), kept = groups.Prunable.Sum(g => selection.KeptCount(g));
        Assert.InRange(kept, total / 10 - 2, total / 10 + 6); // about 10 % kept, rounding to pairs
        Assert.All(groups.Prunable, g => Assert.True(selection.KeptCount(g) >= 2 && selection.KeptCount(g) % 2 == 0));
    }

    [Fact]
    public void BatchNormCriterionNeedsBatchNorm()
    {
        var groups = ChannelGroups.Analyze(TestModels.Fixture("plain_cnn_folded"));
        var error = Assert.Throws<PruningException>(() => new WeightImportance(WeightImportance.Criterion.BatchNormGamma).Score(groups, groups.Prunable.First()));
        Assert.Contains("has no BatchNormalization", error.Message);
        Assert.Contains("unknown criterion 'taylor2'", Assert.Throws<ArgumentException>(() => WeightImportance.Parse("taylor2")).Message);
    }

    [Fact]
    public void SearchPruneAndCompareNameOneCriterionType()
    {
        Assert.Equal(ImportanceCriteria.Names, ImportanceCriteria.Names.Select(n => ChannelCriterion.Parse(n).Name));
        Assert.Equal(ChannelCriterion.L1, ChannelCriterion.Parse(" L1 "));
        Assert.Equal(ChannelCriterion.Parse("fpgm"), ChannelCriterion.Parse("fpgm"));
        // Aliases are accepted and kept as given: a study created with one stored it, and resumes with it.
        Assert.Equal("bn-gamma", ChannelCriterion.Parse("BN-Gamma").Name);
        Assert.True(ChannelCriterion.Parse("mean-activation").NeedsData);
        Assert.Equal("lrp-epsilon", ChannelCriterion.Parse("lrp-epsilon").Name);
        Assert.Equal(["taylor", "apoz", "mean-act", "lrp", "lrp-zplus"],
                     ImportanceCriteria.Names.Where(n => ChannelCriterion.Parse(n).NeedsData));
        Assert.Contains("unknown criterion 'magic'; criteria are l1, l2, fpgm", Assert.Throws<ArgumentException>(() => ChannelCriterion.Parse("magic")).Message);
        Assert.Contains("needs data", Assert.Throws<ArgumentException>(() => ChannelCriterion.Parse("taylor").Create(null)).Message);
        // A structured method of compare carries the criterion the search would use; +int8 keeps it; others have none.
        Assert.Equal(ChannelCriterion.Parse("fpgm"), PruningMethod.Parse("fpgm").Criterion);
        Assert.Equal(ChannelCriterion.Parse("lrp"), PruningMethod.Parse("lrp+int8").Criterion);
        Assert.True(PruningMethod.Parse("lrp+int8").NeedsData);
        Assert.Null(PruningMethod.Parse("magnitude-global").Criterion);
        Assert.False(PruningMethod.Parse("int8").NeedsData);
    }
}
