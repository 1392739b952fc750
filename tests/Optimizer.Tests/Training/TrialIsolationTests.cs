using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>
/// Per-trial isolation: a training's seed belongs to it, not to the process, so trials that a worker runs side by side
/// train exactly as each would alone (the multi-worker study relies on it). libtorch's thread count is the process's,
/// and on some CPUs it changes the result, so a study fixes one count for all its trials
/// (<see cref="Search.StudyDefinition.ScreeningThreads"/>; checked end to end by the multi-worker test).
/// </summary>
[Collection(nameof(TrialIsolationTests))]
public class TrialIsolationTests
{
    /// <summary>A small MobileNetV2: its Dropout draws from the random generator every step, so a shared generator would show.</summary>
    static readonly ModelProto Model = Architectures.MobileNetV2(1, 28, 10, widthMultiplier: 0.25, seed: 4);

    static float[] Train(int seed, int threads)
    {
        using var module = new OnnxModule(Model);
        Trainer.Train(module, TrainerTests.Images(192, offset: seed), null,
                      new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 6, BatchSize = 32, LearningRate = 0.05, Seed = seed, Threads = threads });
        var weights = module.Snapshot();
        try
        {
            return [.. weights.OrderBy(w => w.Key, StringComparer.Ordinal).SelectMany(w => w.Value.data<float>().ToArray())];
        }
        finally
        {
            foreach (var tensor in weights.Values) tensor.Dispose();
        }
    }

    [Fact]
    public void TrainingsSideBySideWithTheirOwnSeedsEndAsEachDoesAlone()
    {
        var aloneA = Train(seed: 1, threads: 1);
        var aloneB = Train(seed: 2, threads: 1);
        Assert.NotEqual(aloneA, aloneB);
        float[]? a = null, b = null;
        var barrier = new Barrier(2);
        Parallel.Invoke(new ParallelOptions { MaxDegreeOfParallelism = 2 },
            () => { barrier.SignalAndWait(); a = Train(seed: 1, threads: 1); },
            () => { barrier.SignalAndWait(); b = Train(seed: 2, threads: 1); });
        Assert.Equal(aloneA, a);
        Assert.Equal(aloneB, b);
    }
}

/// <summary>Alone: other test classes switch libtorch's process-wide kernel settings (oneDNN on or off) while they run,
/// which would reach into these trainings.</summary>
[CollectionDefinition(nameof(TrialIsolationTests), DisableParallelization = true)]
public sealed class TrialIsolationCollection;
