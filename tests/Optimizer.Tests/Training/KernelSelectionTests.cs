using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>The per-machine choice of convolution kernels: the policy, the cache key, and the real check on this machine.
/// Alone: the check switches libtorch's process-wide kernel flag, which would change other tests' training under them.</summary>
[Collection(nameof(KernelFlagCollection))]
public sealed class KernelSelectionTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("kernels-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void AModeThatFailsTheCheckIsNeverChosenAndACorrectFasterOneAlwaysIs()
    {
        var off = new KernelCheck(TorchRuntime.Off, 0, 100, true);
        Assert.Equal(TorchRuntime.Off, KernelSelection.Choose([off, new KernelCheck(TorchRuntime.Native, 0.4, 400, false)]));
        Assert.Equal(TorchRuntime.Off, KernelSelection.Choose([off, new KernelCheck(TorchRuntime.Native, double.PositiveInfinity, 900, false)]));
        Assert.Equal(TorchRuntime.Native, KernelSelection.Choose([off, new KernelCheck(TorchRuntime.Native, 2e-6, 400, true)]));
        Assert.Equal(TorchRuntime.Off, KernelSelection.Choose([off, new KernelCheck(TorchRuntime.Native, 2e-6, 90, true)])); // correct but slower
    }

    [Fact]
    public void TheComparisonCatchesAWrongValueAnywhereAndToleratesRounding()
    {
        List<float[]> reference = [[1f, -2f, 4f], [0.5f, 0.25f]];
        Assert.Equal(0, KernelSelection.RelativeError(reference, [[1f, -2f, 4f], [0.5f, 0.25f]]));
        Assert.True(KernelSelection.RelativeError(reference, [[1f, -2f, 4.00001f], [0.5f, 0.25f]]) <= KernelSelection.Tolerance);
        Assert.True(KernelSelection.RelativeError(reference, [[1f, -2f, 4f], [0.5f, 0.3f]]) > KernelSelection.Tolerance); // a gradient 20 % off
        Assert.Equal(double.PositiveInfinity, KernelSelection.RelativeError(reference, [[1f, float.NaN, 4f], [0.5f, 0.25f]]));
        Assert.Equal(double.PositiveInfinity, KernelSelection.RelativeError(reference, [[1f, -2f, 4f]]));
    }

    [Fact]
    public void TheCacheKeyChangesWithEachPartAndShapesNameEveryConvolution()
    {
        string key = KernelSelection.Key("AMD EPYC/26/2/1/0x1000065", "avx2 avx512f", "0.107.0/2 cores", "1x28x28;8x28x28:56448:72");
        Assert.Equal(key, KernelSelection.Key("AMD EPYC/26/2/1/0x1000065", "avx2 avx512f", "0.107.0/2 cores", "1x28x28;8x28x28:56448:72"));
        Assert.NotEqual(key, KernelSelection.Key("AMD EPYC/26/2/1/0x1000066", "avx2 avx512f", "0.107.0/2 cores", "1x28x28;8x28x28:56448:72"));
        Assert.NotEqual(key, KernelSelection.Key("AMD EPYC/26/2/1/0x1000065", "avx2", "0.107.0/2 cores", "1x28x28;8x28x28:56448:72"));
        Assert.NotEqual(key, KernelSelection.Key("AMD EPYC/26/2/1/0x1000065", "avx2 avx512f", "0.108.0/2 cores", "1x28x28;8x28x28:56448:72"));
        Assert.NotEqual(key, KernelSelection.Key("AMD EPYC/26/2/1/0x1000065", "avx2 avx512f", "0.107.0/2 cores", "1x28x28;8x28x28:56448:73"));

        var model = Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed: 1);
        string shapes = KernelSelection.Shapes(model);
        Assert.StartsWith("1x28x28;", shapes);
        Assert.Equal(model.Graph.Node.Count(n => n.OpType == "Conv"), shapes.Split(';').Length - 1);
        var pruned = StructuredPruner.Prune(new ChannelSelection(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5));
        Assert.NotEqual(shapes, KernelSelection.Shapes(pruned));
    }

    [Fact]
    public void TheCheckRunsTheRealKernelsHereAndItsDecisionIsCachedPerKey()
    {
        var tiny = Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3);
        var checks = KernelSelection.Check([tiny], threads: 2);
        var off = Assert.Single(checks, c => c.Mode == TorchRuntime.Off);
        var native = Assert.Single(checks, c => c.Mode == TorchRuntime.Native);
        Assert.Equal(0, off.MaxRelativeError);
        Assert.True(off.Correct && off.ImagesPerSecond > 0 && native.ImagesPerSecond > 0);
        Assert.Equal(native.MaxRelativeError <= KernelSelection.Tolerance, native.Correct);
        Assert.False(double.IsNaN(native.MaxRelativeError));

        string cache = Path.Combine(directory, "kernels.json");
        var first = KernelSelection.Decide([tiny], 2, cache);
        Assert.False(first.FromCache);
        Assert.Equal(KernelSelection.Choose(first.Checks), first.Mode);
        Assert.True(File.Exists(cache));
        var again = KernelSelection.Decide([tiny], 2, cache);
        Assert.True(again.FromCache);
        Assert.Equal((first.Mode, first.Key), (again.Mode, again.Key));
        var other = KernelSelection.Decide([Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 12], seed: 3)], 2, cache);
        Assert.False(other.FromCache); // other shapes: another key, checked anew
        Assert.NotEqual(first.Key, other.Key);

        File.WriteAllText(cache, "{ not json");
        Assert.False(KernelSelection.Decide([tiny], 2, cache).FromCache); // a corrupt cache is checked again, never trusted
    }

    [Fact]
    public void ATrainedModelRecordsWhichKernelsTrainedIt()
    {
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var train = sample.Train.Take(Enumerable.Range(0, 64).ToArray());
        using var module = new OnnxModule(Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3));
        Trainer.Train(module, train, null, new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 2, BatchSize = 32, Threads = 2 });
        var decision = TorchRuntime.Decision!;
        Assert.Equal(decision.Mode == TorchRuntime.Off ? TorchRuntime.Off : TorchRuntime.OneDnnMode, TorchRuntime.OneDnnMode);
        string recorded = module.WriteBack().MetadataProps.Single(p => p.Key == "paretoprune.kernels").Value;
        Assert.StartsWith($"oneDNN {decision.Mode} (", recorded);
    }
}

[CollectionDefinition(nameof(KernelFlagCollection), DisableParallelization = true)]
public sealed class KernelFlagCollection;
