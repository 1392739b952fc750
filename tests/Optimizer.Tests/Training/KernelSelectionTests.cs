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
    public void TheKernelLineLeavesOutEmptyPartsAndStraySeparators()
    {
        Assert.Equal("oneDNN off", new KernelDecision(KernelMode.Off, "", "key", [], FromCache: false).ToString());
        Assert.Equal("oneDNN off (PARETOPRUNE_ONEDNN=off)", new KernelDecision(KernelMode.Off, "PARETOPRUNE_ONEDNN=off; ", "key", [], false).ToString());
        Assert.Equal("a; b", KernelDecision.Join("", "a;", " ", "; b"));
    }

    [Fact]
    public void ModesAreWrittenAndReadByTheirNames()
    {
        // The per-machine cache and a capped check's result hold "channels-last", as they did when modes were strings.
        string json = KernelSelection.WriteChecks([new KernelCheck(KernelMode.ChannelsLast, 1e-6, 500, true), new KernelCheck(KernelMode.Sse41, 0.5, 90, false)]);
        Assert.Contains("\"Mode\":\"channels-last\"", json);
        Assert.Contains("\"Mode\":\"sse41\"", json);
        var read = System.Text.Json.JsonSerializer.Deserialize<List<KernelCheck>>(json)!;
        Assert.Equal([KernelMode.ChannelsLast, KernelMode.Sse41], read.Select(c => c.Mode));
        Assert.Equal(["off", "native", "channels-last", "avx2", "sse41"], KernelModes.All.Select(KernelModes.Name));
        Assert.All(KernelModes.All, m => Assert.Equal(m, KernelModes.Parse(m.Name())));
        Assert.Equal(["AVX2", "SSE41"], KernelModes.All.Select(m => m.Cap()).OfType<string>());
        Assert.Contains("use one of off, native, channels-last, avx2, sse41", Assert.Throws<ArgumentException>(() => KernelModes.Parse("fast")).Message);
        Assert.Throws<System.Text.Json.JsonException>(() => System.Text.Json.JsonSerializer.Deserialize<KernelCheck>("{\"Mode\":\"turbo\"}"));
    }

    [Fact]
    public void AModeThatFailsTheCheckIsNeverChosenAndACorrectFasterOneAlwaysIs()
    {
        var off = new KernelCheck(KernelMode.Off, 0, 100, true);
        Assert.Equal(KernelMode.Off, KernelSelection.Choose([off, new KernelCheck(KernelMode.Native, 0.4, 400, false)]));
        Assert.Equal(KernelMode.Off, KernelSelection.Choose([off, new KernelCheck(KernelMode.Native, double.PositiveInfinity, 900, false)]));
        Assert.Equal(KernelMode.Native, KernelSelection.Choose([off, new KernelCheck(KernelMode.Native, 2e-6, 400, true)]));
        Assert.Equal(KernelMode.Off, KernelSelection.Choose([off, new KernelCheck(KernelMode.Native, 2e-6, 90, true)])); // correct but slower
        // Three modes: the fastest correct one, never a faster wrong one.
        var native = new KernelCheck(KernelMode.Native, 2e-6, 400, true);
        Assert.Equal(KernelMode.ChannelsLast, KernelSelection.Choose([off, native, new KernelCheck(KernelMode.ChannelsLast, 3e-6, 600, true)]));
        Assert.Equal(KernelMode.Native, KernelSelection.Choose([off, native, new KernelCheck(KernelMode.ChannelsLast, 0.2, 600, false)]));
        Assert.Equal(KernelMode.Native, KernelSelection.Choose([off, native, new KernelCheck(KernelMode.ChannelsLast, 3e-6, 300, true)]));
    }

    [Fact]
    public void ChannelsLastIsKeptToAlignedModelsWhereItLosesOnUnalignedChannelCounts()
    {
        var off = new KernelCheck(KernelMode.Off, 0, 100, true, 80);
        var native = new KernelCheck(KernelMode.Native, 2e-6, 400, true, 900);
        Assert.Equal(16, KernelSelection.ChannelsLastBlock([off, native, new KernelCheck(KernelMode.ChannelsLast, 3e-6, 600, true, 500)], 16));
        Assert.Equal(0, KernelSelection.ChannelsLastBlock([off, native, new KernelCheck(KernelMode.ChannelsLast, 3e-6, 600, true, 1000)], 16));
        // Without a correct NCHW oneDNN there is nothing else to fall back to.
        Assert.Equal(0, KernelSelection.ChannelsLastBlock([off, native with { Correct = false }, new KernelCheck(KernelMode.ChannelsLast, 3e-6, 600, true, 500)], 16));
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
        var checks = KernelSelection.Check([tiny], [tiny], threads: 2);
        var off = Assert.Single(checks, c => c.Mode == KernelMode.Off);
        Assert.Equal(0, off.MaxRelativeError);
        Assert.True(off.Correct && off.ImagesPerSecond > 0);
        foreach (var mode in new[] { KernelMode.Native, KernelMode.ChannelsLast })
        {
            var check = Assert.Single(checks, c => c.Mode == mode);
            Assert.True(check.ImagesPerSecond > 0);
            Assert.Equal(check.MaxRelativeError <= KernelSelection.Tolerance, check.Correct);
            Assert.False(double.IsNaN(check.MaxRelativeError));
        }

        string cache = Path.Combine(directory, "kernels.json");
        var first = KernelSelection.Decide([tiny], 2, cache);
        Assert.False(first.FromCache);
        Assert.Equal(KernelSelection.Choose(first.Checks), first.Mode);
        if (KernelFault.Injected is not null)
        {
            Assert.False(File.Exists(cache)); // a decision reached under an injected fault is not this machine's: never cached
            return;
        }
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
    public void EveryDistinctConvolutionIsCheckedAloneWithItsShapesAndAttributes()
    {
        // ResNet-20 has 19 convolutions of 6 kinds: the stem, 16→16, 16→32 stride 2, 32→32, 32→64 stride 2, 64→64.
        var resnet = Architectures.CifarResNet(20, 1, 28, 10, seed: 1);
        var convolutions = KernelSelection.Convolutions(resnet);
        Assert.Equal(6, convolutions.Count);
        var graph = new OnnxGraph(resnet);
        var shapes = ShapeInference.Infer(graph);
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Conv"))
        {
            var weight = shapes[node.Input[1]].Shape;
            var input = shapes[node.Input[0]].Shape;
            Assert.Single(convolutions, c => c.Graph.Initializer[0].Dims.SequenceEqual(weight)
                                             && TestModels.InputShape(c).Skip(1).SequenceEqual(input.Skip(1))
                                             && c.Graph.Node[0].Attribute.Equals(node.Attribute));
        }
        foreach (var convolution in convolutions)
        {
            // Each runs in ONNX Runtime and in the graph module alike.
            var shape = TestModels.InputShape(convolution, batch: 2);
            var input = TestModels.RandomInput(shape, seed: 2);
            using var module = new OnnxModule(convolution, channelsLast: false);
            module.eval();
            using var noGrad = TorchSharp.torch.no_grad();
            TestModels.AssertClose(TestModels.Run(convolution, input, shape), module.forward(TorchSharp.torch.tensor(input, shape)).data<float>().ToArray());
        }
    }

    [Fact]
    public void ATrainedModelRecordsWhichKernelsTrainedIt()
    {
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var train = sample.Train.Take(Enumerable.Range(0, 64).ToArray());
        using var module = new OnnxModule(Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3));
        Trainer.Train(module, train, null, new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 2, BatchSize = 32, Threads = 2 });
        var decision = TorchRuntime.Decision!;
        Assert.Equal(decision.Mode == KernelMode.Off ? KernelMode.Off : TorchRuntime.OneDnnMode, TorchRuntime.OneDnnMode);
        string recorded = module.WriteBack().MetadataProps.Single(p => p.Key == "paretoprune.kernels").Value;
        // Four convolution shapes, each on a kernel checked correct here, named
        // with the evidence, then the whole-model decision.
        Assert.NotEmpty(module.Kernels.Used);
        foreach (var (signature, kernel) in module.Kernels.Used)
            Assert.True(ConvKernels.Verify(signature, kernel).Correct, $"{ConvKernelPlan.Name(kernel)} ran {signature} unchecked or wrong");
        string expected = decision.Mode == KernelMode.Off ? "ATen for 4 convolution shapes" : "convolution shapes, each checked against ATen on this machine";
        Assert.Contains(expected, recorded);
        Assert.EndsWith($"; chosen: {decision}", recorded);
    }
}

[CollectionDefinition(nameof(KernelFlagCollection), DisableParallelization = true)]
public sealed class KernelFlagCollection;
