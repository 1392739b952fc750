using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

public class TrainerTests
{
    static readonly Lazy<TrainTest> Sample = new(DatasetCatalog.LoadEmbeddedSample);

    /// <summary>A few hundred Fashion-MNIST images, stratified, from the embedded sample.</summary>
    internal static Dataset Images(int count, int offset = 0) =>
        Sample.Value.Train.Take(Enumerable.Range(0, count).Select(i => (i * 7 + offset) % Sample.Value.Train.Count).ToArray());

    internal static ModelProto TinyCnn(int seed = 1) => Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed);

    internal static readonly TrainingOptions Quick = new()
    {
        Epochs = 3, BatchSize = 50, LearningRate = 0.05, Seed = 3, Threads = 2, WeightDecay = 0,
    };

    [Fact]
    public void TheTeachersRememberedOutputsTrainAsItsFreshOnesDo()
    {
        var train = Images(160);
        var teacher = TinyCnn(seed: 7);
        var student = TinyCnn(seed: 2);
        var shared = new Distillation(teacher);
        var options = Quick with { Epochs = 1, Distillation = shared };
        using var first = new OnnxModule(student);
        Trainer.Train(first, train, null, options); // the teacher runs for every batch and its outputs are kept
        var remembered = shared.Outputs.TryGetValue(train, out var entry) ? entry.Values : null;
        Assert.NotNull(remembered);
        Assert.All(remembered, v => Assert.Equal(10, v!.Length)); // every image seen, its ten logits kept

        // The same training again: from the remembered outputs only, with exactly the same result as with fresh ones,
        // and as a training whose teacher runs every time (augmentation on the fly would change the images).
        using var second = new OnnxModule(student);
        Trainer.Train(second, train, null, options);
        using var fresh = new OnnxModule(student);
        Trainer.Train(fresh, train, null, options with { Distillation = new Distillation(teacher) });
        var a = OnnxModel.ToBytes(Without(first.WriteBack()));
        Assert.Equal(a, OnnxModel.ToBytes(Without(second.WriteBack())));
        Assert.Equal(a, OnnxModel.ToBytes(Without(fresh.WriteBack())));

        // Another teacher through a copy of the same instance does not read the first teacher's outputs.
        var other = shared with { Teacher = TinyCnn(seed: 9) };
        using var third = new OnnxModule(student);
        Trainer.Train(third, train, null, options with { Distillation = other });
        Assert.NotEqual(a, OnnxModel.ToBytes(Without(third.WriteBack())));
    }

    /// <summary>The model without its provenance metadata (the kernels line is the same for every training here anyway).</summary>
    static ModelProto Without(ModelProto model)
    {
        model.MetadataProps.Clear();
        return model;
    }

    [Fact]
    public void ProgressIsReportedAndCancellationStopsCleanly()
    {
        using var cancellation = new CancellationTokenSource();
        var reports = new List<TrainingProgress>();
        using var module = new OnnxModule(TinyCnn());
        var progress = new SynchronousProgress<TrainingProgress>(p => { reports.Add(p); if (p.Step == 3) cancellation.Cancel(); });
        var result = Trainer.Train(module, Images(400), null, Quick, progress, cancellation.Token);
        Assert.True(result.Cancelled);
        Assert.Equal([1, 2, 3], reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.True(r.ImagesPerSecond > 0 && r.Loss > 0 && r.StepsPerEpoch == 8));
    }

    [Fact]
    public void LearningRateSchedules()
    {
        var cosine = new TrainingOptions { LearningRate = 0.1, WarmupEpochs = 1 };
        Assert.Equal(0.1 / 10, Trainer.LearningRate(cosine, 0, 10, 100), 12);    // first warm-up step
        Assert.Equal(0.1, Trainer.LearningRate(cosine, 10, 10, 100), 12);        // warm-up done: cosine starts at the top
        Assert.Equal(0.05, Trainer.LearningRate(cosine, 55, 10, 100), 12);       // half-way through the cosine
        var step = new TrainingOptions { LearningRate = 0.1, Schedule = ScheduleKind.Step, StepEpochs = 2, StepGamma = 0.5 };
        Assert.Equal(0.1, Trainer.LearningRate(step, 19, 10, 100), 12);
        Assert.Equal(0.05, Trainer.LearningRate(step, 20, 10, 100), 12);
        Assert.Equal(0.025, Trainer.LearningRate(step, 45, 10, 100), 12);
    }

    [Fact]
    public void DistillingFromAnIdenticalTeacherChangesNothingAndFromAnotherDoes()
    {
        var model = ModelSurgery.FoldBatchNorm(TinyCnn()); // no BN: training and evaluation modes compute the same
        var onlyKl = Quick with { Epochs = 1, MaxStepsPerEpoch = 2, Momentum = 0, Distillation = new Distillation(model, Temperature: 4, Weight: 1.0) };
        using var student = new OnnxModule(model);
        Trainer.Train(student, Images(100), null, onlyKl);
        // The student equals its teacher, so the KL loss and its gradient are zero (up to rounding): no weight moves.
        double MaxChange(OnnxModule trained) => new OnnxModule(model).NamedParameters
            .Max(p => (p.Value - trained.NamedParameters[p.Key]).abs().max().item<float>());
        Assert.True(MaxChange(student) < 1e-6, $"weights moved by {MaxChange(student)}");

        using var other = new OnnxModule(ModelSurgery.FoldBatchNorm(TinyCnn(seed: 2)));
        var result = Trainer.Train(other, Images(100), null, onlyKl);
        Assert.True(result.Epochs[0].TrainLoss > 1e-4);
        using var reference = new OnnxModule(ModelSurgery.FoldBatchNorm(TinyCnn(seed: 2)));
        double moved = reference.NamedParameters.Max(p => (p.Value - other.NamedParameters[p.Key]).abs().max().item<float>());
        Assert.True(moved > 1e-4, $"a student unlike its teacher should learn from it (moved {moved})");
    }

    [Fact]
    public void SparseWeightsKeepTheirZerosThroughTraining()
    {
        var (pruned, layers) = UnstructuredPruner.Prune(TinyCnn(), 0.7);
        var sparse = layers.Select(l => l.Weight).ToList();
        using var module = new OnnxModule(pruned);
        Trainer.Train(module, Images(200), null, Quick with { Epochs = 1, MaxStepsPerEpoch = 3, WeightDecay = 5e-4, SparseWeights = sparse });
        var trained = module.WriteBack();
        var before = pruned.Graph.Initializer.ToDictionary(i => i.Name, OnnxTensors.ReadFloats);
        bool moved = false;
        foreach (var tensor in trained.Graph.Initializer.Where(i => sparse.Contains(i.Name)))
        {
            var after = OnnxTensors.ReadFloats(tensor);
            for (int i = 0; i < after.Length; i++)
            {
                if (before[tensor.Name][i] == 0) Assert.True(BitConverter.SingleToInt32Bits(after[i]) == 0, $"{tensor.Name}[{i}] is {after[i]}, not +0"); // +0.0 compresses best
                else moved |= after[i] != before[tensor.Name][i];
            }
        }
        Assert.True(moved, "training moved no weight");

        // Without the list, momentum and weight decay revive pruned weights: the option is what keeps them.
        using var unmasked = new OnnxModule(pruned);
        Trainer.Train(unmasked, Images(200), null, Quick with { Epochs = 1, MaxStepsPerEpoch = 3 });
        Assert.True(UnstructuredPruner.Measure(unmasked.WriteBack()).Sum(l => l.Zeros) < layers.Sum(l => l.Zeros));

        var unknown = Assert.Throws<ArgumentException>(() => Trainer.Train(new OnnxModule(pruned), Images(50), null, Quick with { SparseWeights = ["nope"] }));
        Assert.Contains("'nope' is not a trainable parameter", unknown.Message);
    }

    [Fact]
    public void BatchNormRecalibrationAveragesTheBatchStatistics()
    {
        var data = Images(120);
        using var module = new OnnxModule(TestModels.WithRandomBatchNorm(TinyCnn()));
        Trainer.RecalibrateBatchNorm(module, data, batches: 3, batchSize: 40, seed: 5);

        // Independently: the first BN's input is the first conv's output; its mean over the same 120 images.
        using var noGrad = no_grad();
        var images = tensor(data.Pixels, [120, 1, 28, 28]);
        var convOutput = module.ForwardCapturing(images, ["features.0.conv"]).Captured["features.0.conv"];
        var expectedMean = convOutput.mean([0, 2, 3]).data<float>().ToArray();
        var runningMean = module.Statistics["features.0.bn.running_mean"].data<float>().ToArray();
        for (int c = 0; c < expectedMean.Length; c++) Assert.Equal(expectedMean[c], runningMean[c], 4);
        Assert.All(module.Statistics["features.0.bn.running_var"].data<float>().ToArray(), v => Assert.True(v > 0));
    }

    [Fact]
    public void AFailingLossIsReportedNotHidden()
    {
        var model = TinyCnn();
        var weight = model.Graph.Initializer.Single(i => i.Name == "classifier.weight");
        var values = OnnxTensors.ReadFloats(weight);
        values[0] = float.PositiveInfinity; // a corrupt weight: the very first loss is not finite
        model.Graph.Initializer[model.Graph.Initializer.IndexOf(weight)] = OnnxTensors.CreateFloat(weight.Name, weight.Dims.ToArray(), values);
        using var module = new OnnxModule(model);
        var error = Assert.Throws<TrainingDivergedException>(() => Trainer.Train(module, Images(100), null, Quick));
        Assert.Contains("the loss became", error.Message);
    }
}

/// <summary>
/// Runs alone: resident memory and libtorch's intra-op thread count are process-wide, and a test running in parallel
/// would disturb them (a training with another thread count sums in another order, so its bytes differ).
/// </summary>
[CollectionDefinition("ProcessWide", DisableParallelization = true)]
public sealed class ProcessWideCollection;

[Collection("ProcessWide")]
public class TrainingDeterminismTests
{
    [Fact]
    public void TrainingLearnsAndIsDeterministic()
    {
        var train = TrainerTests.Images(600);
        var validation = TrainerTests.Images(200, offset: 3);
        using var first = new OnnxModule(TrainerTests.TinyCnn());
        double before = Trainer.Evaluate(first, validation).Accuracy;
        var result = Trainer.Train(first, train, validation, TrainerTests.Quick);
        Assert.Equal(3, result.Epochs.Count);
        Assert.True(result.Epochs[^1].TrainLoss < result.Epochs[0].TrainLoss, $"loss {result.Epochs[0].TrainLoss} → {result.Epochs[^1].TrainLoss}");
        Assert.True(result.BestValidationAccuracy > Math.Max(0.5, before + 0.3), $"validation accuracy {before} → {result.BestValidationAccuracy}");

        using var second = new OnnxModule(TrainerTests.TinyCnn());
        Trainer.Train(second, train, validation, TrainerTests.Quick);
        Assert.Equal(OnnxModel.ToBytes(first.WriteBack()), OnnxModel.ToBytes(second.WriteBack()));
    }
}

[Collection("ProcessWide")]
public class TrainingMemoryTests
{
    [Fact]
    public void NativeMemoryStaysFlatOverTwoHundredSteps()
    {
        // A leaked step would keep every intermediate tensor of the batch: about 20 × 16×4×28×28×4 B ≈ 4 MB a step,
        // so the 150 steps between the two readings would add 600 MB. The margin, 64 MB, covers allocator caching
        // and the garbage collector's timing.
        using var module = new OnnxModule(Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 1));
        var data = TrainerTests.Images(160);
        var options = new TrainingOptions { Epochs = 20, BatchSize = 16, LearningRate = 0.01, Seed = 1, Threads = 2 };
        long after50 = 0;
        var progress = new SynchronousProgress<TrainingProgress>(p =>
        {
            if ((p.Epoch - 1) * p.StepsPerEpoch + p.Step != 50) return;
            GC.Collect();
            after50 = Process.GetCurrentProcess().WorkingSet64;
        });
        var result = Trainer.Train(module, data, null, options, progress);
        GC.Collect();
        long after200 = Process.GetCurrentProcess().WorkingSet64;
        Assert.Equal(200, result.Epochs.Count * 10);
        Assert.True(after50 > 0);
        Assert.True(after200 - after50 < 64L << 20, $"resident memory grew by {(after200 - after50) >> 20} MB between step 50 and step 200");
    }
}

/// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
