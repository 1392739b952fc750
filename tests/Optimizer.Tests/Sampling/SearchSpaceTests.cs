using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Tests.Sampling;

public class SearchSpaceTests
{
    static SearchSpace Space(string name, SearchSpaceOptions? options = null) =>
        new(ChannelGroups.Analyze(TestModels.Load(name)), new WeightImportance(WeightImportance.Criterion.L1), options);

    [Theory]
    [InlineData("simplecnn")]
    [InlineData("resnet20")]
    [InlineData("resnet20-b")]
    [InlineData("mobilenetv2")]
    [InlineData("resnet_tiny")]
    public void PredictedCostsEqualThoseOfThePrunedModel(string name)
    {
        var space = Space(name);
        var random = new Random(5);
        for (int i = 0; i < 6; i++)
        {
            var kept = space.Decode(Enumerable.Range(0, space.Count).Select(_ => random.NextDouble()).ToArray());
            var (macs, parameters) = space.Costs(kept);
            var pruned = space.Prune(kept);
            var actual = ModelCost.Analyze(pruned);
            Assert.Equal(actual.Macs, macs);
            Assert.Equal(actual.Params, parameters);
            // Bytes are predicted from parameters; the file differs by varint framing only.
            Assert.InRange(space.PredictBytes(kept), actual.SerializedBytes * 0.98, actual.SerializedBytes * 1.02);
        }
        Assert.Equal(ModelCost.Analyze(space.Groups.Model).Macs, space.Costs(space.Full).Macs);
    }

    [Fact]
    public void DecodingSnapsToCountsAndEncodingInvertsIt()
    {
        var space = Space("resnet20", new SearchSpaceOptions { MinKeepFraction = 0.25, RoundTo = 4 });
        var random = new Random(1);
        for (int i = 0; i < 20; i++)
        {
            var kept = space.Decode(Enumerable.Range(0, space.Count).Select(_ => random.NextDouble()).ToArray());
            for (int d = 0; d < space.Count; d++)
            {
                var dimension = space.Dimensions[d];
                Assert.InRange(kept[d], dimension.MinKeep, dimension.Size);
                Assert.True(kept[d] % 4 == 0 || kept[d] == dimension.Size, $"{kept[d]} is not a multiple of 4");
                Assert.True(kept[d] >= dimension.Size / 4);
            }
            Assert.Equal(kept, space.Decode(space.Encode(kept)));
        }
        Assert.Equal(space.Full, space.Decode(Enumerable.Repeat(1.0, space.Count).ToArray()));
        Assert.Equal(space.Dimensions.Select(d => d.MinKeep), space.Decode(new double[space.Count]));
    }

    [Fact]
    public void TyingEqualSizedGroupsLeavesOneDimensionPerWidth()
    {
        var free = Space("resnet20");
        var tied = Space("resnet20", new SearchSpaceOptions { TieEqualSizedGroups = true });
        Assert.Equal(free.Groups.Prunable.Select(g => g.Size).Distinct().Count(), tied.Count);
        Assert.True(tied.Count < free.Count);
        var half = tied.Uniform(0.5);
        var counts = tied.GroupCounts(half);
        foreach (var group in tied.Groups.Prunable) Assert.Equal(group.Size / 2, counts[group.Index]);
        Assert.Equal(ModelCost.Analyze(tied.Prune(half)).Macs, tied.Costs(half).Macs);
    }

    [Fact]
    public void TyingWithStreamsApartGivesTheResidualStreamADimensionOfItsOwn()
    {
        var tied = Space("resnet20", new SearchSpaceOptions { TieEqualSizedGroups = true });
        var apart = Space("resnet20", new SearchSpaceOptions { TieEqualSizedGroups = true, TieStreamsApart = true });
        // The shipped ResNet-20: one residual stream of 64 channels that ten convolutions produce (the stem and every block's
        // second convolution, tied by the additions; a stage of 16 or 32 uses part of it), and each block's inner channels
        // (one producer each). Tied by width alone, the stream goes with the last stage's inner channels; apart, it is a
        // dimension of its own.
        Assert.Equal(3, tied.Count);
        Assert.Contains(tied.Dimensions, d => d.Groups.Any(i => tied.Groups.Groups[i].Producers.Count > 1) && d.Groups.Count == 4);
        Assert.Equal(4, apart.Count);
        foreach (var dimension in apart.Dimensions)
        {
            var members = dimension.Groups.Select(i => apart.Groups.Groups[i]).ToList();
            Assert.Single(members.Select(g => g.Size).Distinct());
            Assert.Single(members.Select(g => g.Producers.Count > 1).Distinct());
        }
        var stream = Assert.Single(apart.Dimensions, d => d.Groups.Count == 1);
        Assert.True(apart.Groups.Groups[stream.Groups[0]].Producers.Count > 1);
        Assert.Equal([16, 32, 64], apart.Dimensions.Where(d => d != stream).Select(d => d.Size).Order());
        Assert.All(apart.Dimensions.Where(d => d != stream), d => Assert.Equal(3, d.Groups.Count));
    }

    [Fact]
    public void OutOfRangeConfigurationsAreRefusedWithTheDimension()
    {
        var space = Space("simplecnn");
        var kept = space.Full;
        kept[0] = space.Dimensions[0].Size + 1;
        var error = Assert.Throws<ArgumentException>(() => space.Costs(kept));
        Assert.Contains(space.Dimensions[0].Name, error.Message);
        Assert.Throws<ArgumentException>(() => space.Decode([0.5]));
    }
}
