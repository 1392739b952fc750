using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Training;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>
/// Per-signature kernel verification, the training guard and the injected fault (<see cref="KernelFault"/>), on any CPU:
/// whatever this machine's own oneDNN does, a kernel made wrong by the fault must be detected, avoided, or recovered from.
/// oneDNN is switched on for these tests (only checked kernels run under it, so that is safe where some are wrong), the
/// fault is process-wide: alone in the kernel-flag collection.
/// </summary>
[Collection(nameof(KernelFlagCollection))]
public sealed class ConvKernelTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("conv-kernels-").FullName;
    readonly bool wasEnabled;

    public ConvKernelTests()
    {
        TorchRuntime.UseKernelsFor(null, 2);
        wasEnabled = TorchRuntime.MkldnnEnabled;
        TorchRuntime.MkldnnEnabled = true;
        ConvKernels.CachePath = Path.Combine(directory, "convolutions.json");
    }

    public void Dispose()
    {
        KernelFault.Injected = null;
        TorchRuntime.MkldnnEnabled = wasEnabled;
        ConvKernels.CachePath = Path.Combine(directory, "unused.json");
        Directory.Delete(directory, recursive: true);
    }

    static ConvSignature Signature(int c, int o, int k = 3, int stride = 1, int pad = 1, int groups = 1, int size = 28, int batch = 16, bool bias = false) =>
        new(c, o, k, k, stride, stride, pad, pad, 1, 1, groups, size, size, ConvSignature.Bucket(batch), bias, get_num_threads());

    public static TheoryData<int, int, int, int, int, int, bool> Shapes => new()
    {
        { 23, 45, 3, 1, 1, 1, false },  // unaligned, as pruned candidates are
        { 8, 8, 3, 1, 1, 1, true },     // the shapes seen wrong on one AMD EPYC
        { 16, 24, 1, 1, 0, 1, false },  // pointwise
        { 20, 20, 3, 2, 1, 20, false }, // depthwise, stride 2
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void TheCheckFindsAWrongKernelAndTheChoiceAvoidsIt(int c, int o, int k, int stride, int pad, int groups, bool bias)
    {
        var signature = Signature(c, o, k, stride, pad, groups, bias: bias);
        var clean = ConvKernels.Verify(signature, ConvKernel.OneDnnChannelsLast);
        Assert.True(double.IsFinite(clean.Error) || !clean.Correct);
        Assert.Equal(clean.Error <= KernelSelection.Tolerance, clean.Correct);

        KernelFault.Injected = KernelFault.Parse("native");
        ConvKernels.CachePath = Path.Combine(directory, $"fault-{c}-{o}-{groups}.json");
        var wrong = ConvKernels.Verify(signature, ConvKernel.OneDnnNchw);
        Assert.False(wrong.Correct);
        Assert.True(wrong.Error > 0.1, $"a batch rotated by one image is far off, not {wrong.Error}");
        // The choice never lands on the wrong kernel, whichever layout is preferred, and what it lands on is correct.
        foreach (bool preferChannelsLast in new[] { false, true })
        {
            var chosen = ConvKernels.Choose(signature, preferChannelsLast);
            Assert.NotEqual(ConvKernel.OneDnnNchw, chosen);
            Assert.True(ConvKernels.Verify(signature, chosen).Correct);
        }

        KernelFault.Injected = KernelFault.Parse("channels-last:nan");
        ConvKernels.CachePath = Path.Combine(directory, $"nan-{c}-{o}-{groups}.json");
        Assert.Equal(double.PositiveInfinity, ConvKernels.Verify(signature, ConvKernel.OneDnnChannelsLast).Error);
        Assert.NotEqual(ConvKernel.OneDnnChannelsLast, ConvKernels.Choose(signature, preferChannelsLast: true));
    }

    [Fact]
    public void TheFaultSwitchParsesWhatItSaysAndRefusesTheRest()
    {
        var fault = KernelFault.Parse("native:nan:unchecked@45,23")!;
        Assert.Equal((ConvKernel.OneDnnNchw, true, true), (fault.Kernel, fault.Nan, fault.Unchecked));
        Assert.Equal([23, 45], fault.OutChannels.Order());
        Assert.Equal("native:nan:unchecked@23,45", fault.ToString());
        Assert.Equal(ConvKernel.OneDnnChannelsLast, KernelFault.Parse("channels-last")!.Kernel);
        Assert.Null(KernelFault.Parse(" "));
        Assert.Contains("native or channels-last", Assert.Throws<ArgumentException>(() => KernelFault.Parse("avx2")).Message);
        Assert.Contains("unknown flag 'slow'", Assert.Throws<ArgumentException>(() => KernelFault.Parse("native:slow")).Message);
    }

    [Fact]
    public void VerdictsAreCachedPerMachineAndAFaultNeverReachesTheCache()
    {
        var signature = Signature(13, 27);
        ConvKernels.Verify(signature, ConvKernel.OneDnnNchw);
        ConvKernels.Flush(); // as every training does when it ends (and the process at exit)
        Assert.True(File.Exists(ConvKernels.CachePath));
        var (count, _) = ConvKernels.CheckCost;
        ConvKernels.CachePath = ConvKernels.CachePath; // reloads from the file
        ConvKernels.Verify(signature, ConvKernel.OneDnnNchw);
        Assert.Equal(count, ConvKernels.CheckCost.Count); // read back, not checked again

        KernelFault.Injected = KernelFault.Parse("native");
        string faulty = Path.Combine(directory, "faulty.json");
        ConvKernels.CachePath = faulty;
        Assert.False(ConvKernels.Verify(signature, ConvKernel.OneDnnNchw).Correct);
        ConvKernels.Flush();
        Assert.False(File.Exists(faulty)); // an injected fault's verdicts are never stored

        File.WriteAllText(faulty, "{ not json");
        KernelFault.Injected = null;
        ConvKernels.CachePath = faulty;
        Assert.True(ConvKernels.Verify(signature with { Bias = true }, ConvKernel.OneDnnNchw).Error < 1); // a corrupt cache is checked again
    }

    static readonly Lazy<(ModelProto Model, Dataset Train)> Pruned = new(() =>
    {
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var train = sample.Train.Take(Enumerable.Range(0, 256).Select(i => i * 20).ToArray());
        // Unaligned channel counts, as a pruned candidate has: NCHW oneDNN is the preferred layout.
        return (Architectures.SimpleCnn(1, 28, 10, [7, 9, 13, 11], seed: 5), train);
    });

    /// <summary>The oneDNN layout a module of <paramref name="model"/> prefers here (<see cref="TorchRuntime.ChannelsLastFor"/>):
    /// the kernel a fault must hit for the guard to see it.</summary>
    static string Preferred(ModelProto model) => TorchRuntime.ChannelsLastFor(model) ? "channels-last" : "native";

    static ConvKernel PreferredKernel(ModelProto model) => TorchRuntime.ChannelsLastFor(model) ? ConvKernel.OneDnnChannelsLast : ConvKernel.OneDnnNchw;

    static TrainingOptions Steps(int steps, double rate = 0.05) =>
        new() { Epochs = 1, MaxStepsPerEpoch = steps, BatchSize = 32, LearningRate = rate, Threads = 2, Seed = 3 };

    static float[] Outputs(ModelProto model, Dataset data)
    {
        using var module = new OnnxModule(model) { Kernels = new ConvKernelPlan { ReferenceOnly = true } };
        module.eval();
        using var noGrad = no_grad();
        var batch = data.Batches(32, shuffle: false, seed: 0).First();
        return module.forward(Trainer.ToTensors(batch, data).Images).data<float>().ToArray();
    }

    [Fact]
    public void UnderACheckedFaultTrainingAvoidsTheKernelAndMatchesATen()
    {
        var (model, train) = Pruned.Value;
        KernelFault.Injected = KernelFault.Parse(Preferred(model));
        var use = new KernelUse();
        var trained = CandidatePipeline.FineTune(model, train, Steps(2), CancellationToken.None, use);
        Assert.DoesNotContain(use.Used, u => u.Kernel == PreferredKernel(model));
        Assert.Empty(use.Notes); // nothing for the guard to do: the check kept the wrong kernel out
        // Two steps: float32 and the float64 reference agree to ~3e-6 here; by six steps a ReLU or max-pool tie can flip
        // and they drift apart by 2e-3, which would hide nothing but makes a loose test. A wrong kernel is off by units.
        var reference = CandidatePipeline.FineTune(model, train, Steps(2), CancellationToken.None, new KernelUse { ReferenceOnly = true });
        TestModels.AssertClose(Outputs(reference, train), Outputs(trained, train), 1e-4, 2e-5);
        Assert.Contains("each checked against ATen on this machine", trained.MetadataProps.Single(p => p.Key == "paretoprune.kernels").Value);
    }

    [Fact]
    public void TheGuardRecoversATrainingStartedInAFaultTheCheckMissedAndMarksTheKernelWrong()
    {
        var (model, train) = Pruned.Value;
        KernelFault.Injected = KernelFault.Parse(Preferred(model) + ":nan:unchecked");
        var use = new KernelUse();
        var trained = CandidatePipeline.FineTune(model, train, Steps(6), CancellationToken.None, use);
        string note = Assert.Single(use.Notes);
        Assert.Contains("kernel fault: on oneDNN the loss became NaN", note);
        Assert.Contains("re-run on ATen", note);
        Assert.Contains(use.Used, u => u.Kernel == PreferredKernel(model)); // it did start there
        // Marked: the next training avoids those signatures in that kernel, with no guard needed.
        foreach (var (signature, kernel) in use.Used.Where(u => u.Kernel == PreferredKernel(model)))
        {
            var verdict = ConvKernels.Verify(signature, kernel);
            Assert.False(verdict.Correct);
            Assert.Contains("kernel fault", verdict.Reason);
        }
        var again = new KernelUse();
        CandidatePipeline.FineTune(model, train, Steps(2), CancellationToken.None, again);
        Assert.Empty(again.Notes);
        Assert.DoesNotContain(again.Used, u => u.Kernel == PreferredKernel(model));
        // The recovered model is the reference's: finite, and the same as training on ATen alone.
        var reference = CandidatePipeline.FineTune(model, train, Steps(6), CancellationToken.None, new KernelUse { ReferenceOnly = true });
        TestModels.AssertClose(Outputs(reference, train), Outputs(trained, train), 1e-6, 1e-7);
    }

    [Fact]
    public void ALossThatDivergesOnATenTooIsARealDivergence()
    {
        var (model, train) = Pruned.Value;
        KernelFault.Injected = KernelFault.Parse(Preferred(model) + ":nan:unchecked");
        var e = Assert.Throws<TrainingDivergedException>(() => CandidatePipeline.FineTune(model, train, Steps(8, rate: 1e9), CancellationToken.None, new KernelUse()));
        Assert.Contains("on oneDNN and again on ATen (the reference kernels): a real divergence", e.Message);
        // Without oneDNN in play there is nothing to re-run: the divergence is reported as it is.
        var plain = Assert.Throws<TrainingDivergedException>(() =>
            CandidatePipeline.FineTune(model, train, Steps(8, rate: 1e9), CancellationToken.None, new KernelUse { ReferenceOnly = true }));
        Assert.DoesNotContain("again", plain.Message);
    }

    [Fact]
    public void AModelWithNonFiniteWeightsOrStatisticsIsRefusedByName()
    {
        var (model, train) = Pruned.Value;
        using var module = new OnnxModule(model) { Kernels = new ConvKernelPlan { ReferenceOnly = true } };
        KernelGuard.Check(module, train); // sound
        using (no_grad()) module.NamedParameters.First().Value.fill_(float.NaN);
        var e = Assert.Throws<BrokenModelException>(() => KernelGuard.Check(module, train));
        Assert.Contains($"weight '{module.NamedParameters.First().Key}' holds non-finite values", e.Message);
    }

    [Fact]
    public async Task AnAccuracyBelowChanceOnOneDnnIsTrainedAgainOnATenAndTheKernelsMarked()
    {
        var (model, train) = Pruned.Value;
        var uses = new List<KernelUse>();
        ModelProto Train(KernelUse use)
        {
            uses.Add(use);
            return CandidatePipeline.FineTune(model, train, Steps(2), CancellationToken.None, use);
        }
        // The scorer stands in for a fault that leaves weights and outputs finite: whatever oneDNN trained scores 0 %.
        Task<double> Score(ModelProto _) => Task.FromResult(uses[^1].UsedOneDnn ? 0.0 : 0.8);

        var (trained, accuracy, use) = await KernelGuard.TrainPlausibly(Train, Score, a => a, Balanced(10, 1000), before: 0.9);
        Assert.Equal(2, uses.Count);
        Assert.True(use.ReferenceOnly);
        Assert.Equal(0.8, accuracy);
        Assert.Contains("kernel fault: accuracy 0.0 % is below chance (10.0 % for 10 classes) on oneDNN; re-run on ATen", Assert.Single(use.Notes));
        var suspects = uses[0].Used.Where(u => u.Kernel != ConvKernel.Aten).ToList();
        Assert.NotEmpty(suspects);
        Assert.All(suspects, u => Assert.False(ConvKernels.Verify(u.Signature, u.Kernel).Correct));
        TestModels.AssertClose(Outputs(CandidatePipeline.FineTune(model, train, Steps(2), CancellationToken.None, new KernelUse { ReferenceOnly = true }), train),
                               Outputs(trained, train), 1e-6, 1e-7); // the reference's model stands

        // Below chance on ATen too: broken, never a result. At chance on both after scoring above: a real result, noted.
        var broken = await Assert.ThrowsAsync<BrokenModelException>(() => KernelGuard.TrainPlausibly(Train, _ => Task.FromResult(0.0), a => a, Balanced(10, 1000), null));
        Assert.Contains("on ATen (the reference kernels)", broken.Message);
        var atChance = await KernelGuard.TrainPlausibly(Train, _ => Task.FromResult(0.1), a => a, Balanced(10, 1000), before: 0.9);
        Assert.Contains("alike: a real result", atChance.Use.Notes.Last());
    }

    static int[] Balanced(int classes, int images) => Enumerable.Repeat(images / classes, classes).ToArray();

    [Fact]
    public void AnAccuracyBelowChanceOrFallenToChanceIsImplausible()
    {
        Assert.Null(KernelGuard.Implausible(0.85, Balanced(10, 1000), before: 0.9));
        Assert.Null(KernelGuard.Implausible(0.10, Balanced(10, 1000), before: null)); // at chance, nothing known before: a result
        Assert.Null(KernelGuard.Implausible(0.09, Balanced(10, 1000), before: 0.10)); // at chance before and after
        string below = KernelGuard.Implausible(0.0, Balanced(10, 1000), before: null)!;
        Assert.True(KernelGuard.BelowChance(below));
        Assert.Contains("below chance (10.0 % for 10 classes)", below);
        string fallen = KernelGuard.Implausible(0.105, Balanced(10, 1000), before: 0.91)!;
        Assert.False(KernelGuard.BelowChance(fallen));
        Assert.Contains("at chance", fallen);
        Assert.Null(KernelGuard.Implausible(0.07, Balanced(10, 100), before: null)); // within sampling noise of chance on 100 images
        // Imbalanced (a rare class of 2 %, a majority of 50 %): a model answering the rare class alone is uninformative, not
        // broken; one falling to the majority's share after scoring above it is suspect.
        int[] skewed = [20, 500, 60, 60, 60, 60, 60, 60, 60, 60];
        Assert.Null(KernelGuard.Implausible(0.02, skewed, before: null));
        Assert.Contains("below chance (2.0 %, the rarest of 10 classes)", KernelGuard.Implausible(0.0, skewed, before: null));
        Assert.Contains("at chance (50.0 %)", KernelGuard.Implausible(0.50, skewed, before: 0.9));
        Assert.Null(KernelGuard.Implausible(0.60, skewed, before: 0.9));
    }
}
