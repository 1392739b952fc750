using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Tests.Search;

public sealed class FidelityMapTests
{
    [Fact]
    public void ALineThroughExactPairsIsRecoveredAndPredictionsAreCappedAtOne()
    {
        // Fine-tuning lifts weak candidates most: long = 0.5 + 0.5 × short, exactly.
        var map = FidelityMap.Fit([(0.2, 0.6), (0.6, 0.8), (0.8, 0.9)])!;
        Assert.Equal(0.5, map.Intercept, 12);
        Assert.Equal(0.5, map.Slope, 12);
        Assert.Equal(0.7, map.Predict(0.4), 12);
        Assert.Equal(1, FidelityMap.Fit([(0.5, 0.9), (0.6, 1.0)])!.Predict(0.9));
    }

    [Fact]
    public void ANegativeTrendIsFlattenedAndOneDistinctValueGivesAShift()
    {
        var flat = FidelityMap.Fit([(0.2, 0.9), (0.8, 0.7)])!;
        Assert.Equal(0, flat.Slope);
        Assert.Equal(0.8, flat.Predict(0.5), 12); // the mean of what was seen
        var shift = FidelityMap.Fit([(0.5, 0.8), (0.5, 0.9)])!;
        Assert.Equal(0.35 + 0.3, shift.Predict(0.3), 12); // +0.35 everywhere
        Assert.Null(FidelityMap.Fit([]));
    }
}
