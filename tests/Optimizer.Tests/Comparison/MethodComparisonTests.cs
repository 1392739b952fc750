using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Comparison;

/// <summary>The comparison on a tiny model and a few hundred images: costs per family, kept zeros, resume, failures, specialisation.</summary>
public sealed class MethodComparisonTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("compare-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static readonly Lazy<(ModelProto Model, SearchData Data)> Setup = new(() =>
    {
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var train = sample.Train.Take(Enumerable.Range(0, 600).Select(i => i * 16).ToArray());
        var validation = sample.Train.Take(Enumerable.Range(0, 160).Select(i => i * 16 + 7).ToArray());
        var test = sample.Test.Take(Enumerable.Range(0, 160).Select(i => i * 12).ToArray());
        var statistics = ChannelStatistics.Compute(train);
        var model = new ModelInterface(train.ClassNames, 1, 28, 28, statistics.Mean, statistics.Std)
            .Prepend(Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed: 2));
        // A few steps of training so accuracy is above chance and pruning visibly costs some of it.
        using var module = new OnnxModule(model);
        Trainer.Train(module, train, null, new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 10, BatchSize = 60, LearningRate = 0.05, Threads = 2 });
        return (module.WriteBack(), new SearchData(train, validation, test, "Fashion-MNIST sample, 600/160/160 images"));
    });

    ComparisonOptions Options(string name, params string[] methods) => new()
    {
        OutputDirectory = Path.Combine(directory, name),
        Methods = methods.Select(PruningMethod.Parse).ToList(),
        Amounts = [0.3, 0.6],
        FineTuneEpochs = 1,
        FineTuneStepsPerEpoch = 3,
        BatchSize = 32,
        RecalibrationBatches = 2,
        ImportanceBatches = 2,
        Seed = 1,
        Threads = 2,
    };

    /// <summary>Conv and Gemm weights of a model (what magnitude pruning works on), counted independently of the code under test.</summary>
    static (long Elements, long Zeros) WeightZeros(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        var weights = graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm").Select(n => n.Input[1]).Distinct()
                                 .Select(w => OnnxTensors.ReadFloats(graph.Constant(w)!)).ToList();
        return (weights.Sum(w => (long)w.Length), weights.Sum(w => w.LongCount(x => x == 0)));
    }

    static Dictionary<string, float[]> Weights(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        return graph.Nodes.Where(n => n.OpType is "Conv" or "Gemm").Select(n => n.Input[1]).Distinct()
                          .ToDictionary(w => w, w => OnnxTensors.ReadFloats(graph.Constant(w)!));
    }

    /// <summary>int8 is one point (the model as trained, quantized); l1+int8 is l1's pruned and fine-tuned model, quantized: the
    /// same MACs at about a quarter of the bytes; magnitude+int8 keeps its zeros as INT8 zeros, which gzip then finds.</summary>
    [Fact]
    public async Task Int8AloneAndAfterPruningAreQuantizedVersionsOfTheirFloatPoints()
    {
        var (model, data) = Setup.Value;
        // A float comparison first, then resumed with INT8 methods: their settings join the stored definition then.
        var floatOnly = Options("int8", "l1") with { SaveModels = true, Amounts = [0.6] };
        await new MethodComparison(new MLContext(seed: 0), floatOnly).RunAsync(model, data);
        var options = Options("int8", "l1", "l1+int8", "magnitude-global+int8", "int8") with
        {
            SaveModels = true, Amounts = [0.6], Quantization = new() { CalibrationImages = 64 }, Resume = true,
        };
        var result = await new MethodComparison(new MLContext(seed: 0), options).RunAsync(model, data);
        Assert.Contains("min/max on 64 training images", result.Definition.Quantization);
        var baseline = result.Baseline(ComparisonTasks.All)!;
        var points = result.PointsOf(ComparisonTasks.All).ToDictionary(p => p.Method);
        Assert.Equal(4, points.Count);
        Assert.All(points.Values, p => Assert.False(p.Failed, p.Error));

        var alone = points["int8"];
        Assert.Equal((PruningFamily.None, 0.0), (alone.Family!.Value, alone.Amount));
        Assert.Equal(baseline.Value(ObjectiveKind.Macs), alone.Value(ObjectiveKind.Macs));
        // Under half the bytes: a quarter for the weights, plus what a model this tiny is mostly made of (names, biases, scales).
        Assert.InRange(alone.Value(ObjectiveKind.DenseBytes)!.Value / baseline.Value(ObjectiveKind.DenseBytes)!.Value, 0.25, 0.5);
        Assert.True(Math.Abs(alone.Value(ObjectiveKind.Accuracy)!.Value - baseline.Value(ObjectiveKind.Accuracy)!.Value) <= 0.03);
        var accuracy = alone.Values.Single(v => v.Kind == ObjectiveKind.Accuracy);
        Assert.Contains("as trained; INT8 QDQ", accuracy.Fidelity);
        var saved = OnnxModel.Load(Path.Combine(result.RunDirectory, alone.ModelPath!));
        Assert.True(OnnxModel.IsQuantized(saved));
        Assert.Equal(new FileInfo(Path.Combine(result.RunDirectory, alone.ModelPath!)).Length, alone.Value(ObjectiveKind.DenseBytes));

        // Pruning then INT8: the float point's MACs and parameters, fewer bytes, and the Pi estimate at the integer rate.
        var (floatL1, int8L1) = (points["l1"], points["l1+int8"]);
        Assert.Equal(PruningFamily.Structured, int8L1.Family);
        Assert.Equal(floatL1.Value(ObjectiveKind.Macs), int8L1.Value(ObjectiveKind.Macs));
        Assert.True(int8L1.Value(ObjectiveKind.DenseBytes) < floatL1.Value(ObjectiveKind.DenseBytes));
        var (floatCost, int8Cost) = (ModelCost.Analyze(OnnxModel.Load(Path.Combine(result.RunDirectory, floatL1.ModelPath!))),
                                     ModelCost.Analyze(OnnxModel.Load(Path.Combine(result.RunDirectory, int8L1.ModelPath!))));
        Assert.Equal(floatCost.Params, int8Cost.Params);
        Assert.True(int8Cost.ParamBytes < floatCost.ParamBytes / 2, $"{int8Cost.ParamBytes} bytes of INT8 parameters against {floatCost.ParamBytes}");
        Assert.True(int8L1.Value(ObjectiveKind.Energy) < floatL1.Value(ObjectiveKind.Energy));
        Assert.Contains("fine-tuned 1×3 steps; INT8 QDQ", int8L1.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Fidelity);

        var sparse = points["magnitude-global+int8"];
        Assert.Equal(PruningFamily.Unstructured, sparse.Family);
        Assert.True(sparse.WeightSparsity >= 0.6 - 1e-3);
        Assert.True(sparse.Value(ObjectiveKind.CompressedBytes) < alone.Value(ObjectiveKind.CompressedBytes));
    }

    [Fact]
    public async Task EachFamilyHasItsCostsAndFineTuningKeepsTheZeros()
    {
        var (model, data) = Setup.Value;
        var options = Options("families", "magnitude-global", "magnitude-layer", "l1") with { SaveModels = true };
        var progress = new List<ComparisonProgress>();
        var mlContext = new MLContext(seed: 0);
        var logged = new List<string>();
        mlContext.Log += (_, e) => { if (e.Source == "ParetoPrune.Compare") lock (logged) logged.Add(e.Message); };
        var result = await new MethodComparison(mlContext, options).RunAsync(model, data, new SynchronousProgress<ComparisonProgress>(progress.Add));
        // Every report reached the caller's IProgress and ML.NET's log event alike.
        Assert.Equal(progress.Count, logged.Count(m => m.Contains("[Source=ParetoPrune.Compare, Kind=Info]")));

        Assert.Equal(StudyStatus.Finished, result.Status);
        Assert.Equal([ComparisonTasks.All], result.Tasks);
        var baseline = result.Baseline(ComparisonTasks.All)!;
        var points = result.PointsOf(ComparisonTasks.All);
        Assert.Equal(6, points.Count);
        Assert.All(points, p => Assert.False(p.Failed, p.Error));
        Assert.Equal(7, progress.Count(p => p.Point is not null));
        Assert.Equal(7, progress[^1].Completed);

        var (elements, _) = WeightZeros(model);
        foreach (var p in points.Where(p => p.Family == PruningFamily.Unstructured))
        {
            // Dense counts and the dense file do not change; the zeros are there and only the compressed file shrinks.
            Assert.Equal(baseline.Value(ObjectiveKind.Macs), p.Value(ObjectiveKind.Macs));
            Assert.Equal(baseline.Value(ObjectiveKind.Params), p.Value(ObjectiveKind.Params));
            Assert.Equal(baseline.Value(ObjectiveKind.DenseBytes), p.Value(ObjectiveKind.DenseBytes));
            Assert.True(p.Value(ObjectiveKind.CompressedBytes) < baseline.Value(ObjectiveKind.CompressedBytes));
            // Zeroed counts are rounded (per layer for magnitude-layer): within a few weights of the amount.
            const double rounding = 1e-3;
            Assert.True(p.WeightSparsity >= p.Amount - rounding, $"{p.Method} {p.Amount}: sparsity {p.WeightSparsity}");
            Assert.True(p.NonZeroParams <= baseline.Value(ObjectiveKind.Params) - (p.Amount - rounding) * elements, $"{p.Method} {p.Amount}: {p.NonZeroParams} non-zero");
            Assert.Equal(baseline.Value(ObjectiveKind.Energy), p.Value(ObjectiveKind.Energy)); // an estimate from dense counts cannot see sparsity

            // The saved (fine-tuned, folded) model has every zero the pruning made, and fine-tuning did move the other weights.
            var saved = OnnxModel.Load(Path.Combine(result.RunDirectory, p.ModelPath!));
            var scope = p.Method == "magnitude-global" ? SparsityScope.Global : SparsityScope.PerLayer;
            var justPruned = Weights(ModelSurgery.FoldBatchNorm(UnstructuredPruner.Prune(model, p.Amount, scope).Model));
            var tuned = Weights(saved);
            Assert.Equal(justPruned.Keys.Order(), tuned.Keys.Order());
            bool moved = false;
            foreach (var (name, before) in justPruned)
                for (int i = 0; i < before.Length; i++)
                {
                    if (before[i] == 0) Assert.True(tuned[name][i] == 0, $"{p.Method} {p.Amount}: {name}[{i}] became {tuned[name][i]}");
                    else moved |= tuned[name][i] != before[i];
                }
            Assert.True(moved, "fine-tuning changed no weight");
            var (savedElements, savedZeros) = WeightZeros(saved);
            Assert.True(savedZeros >= (p.Amount - rounding) * savedElements);
        }
        var global = points.Where(p => p.Method == "magnitude-global").ToList();
        Assert.True(global[1].Value(ObjectiveKind.CompressedBytes) < global[0].Value(ObjectiveKind.CompressedBytes));

        // Structured: MACs are those of the model the same selection gives, computed independently, and fall with the amount.
        var structured = points.Where(p => p.Method == "l1").ToList();
        Assert.Equal(PruningFamily.Structured, structured[0].Family);
        var selection = new ChannelSelection(ChannelGroups.Analyze(model), WeightImportance.Parse("l1"));
        foreach (var p in structured)
        {
            var expected = ModelCost.Analyze(StructuredPruner.Prune(selection.Uniform(p.Amount)));
            Assert.Equal(expected.Macs, p.Value(ObjectiveKind.Macs));
            Assert.Equal(expected.Params, p.Value(ObjectiveKind.Params));
            Assert.Equal(new FileInfo(Path.Combine(result.RunDirectory, p.ModelPath!)).Length, p.Value(ObjectiveKind.DenseBytes));
        }
        Assert.True(structured[1].Value(ObjectiveKind.Macs) < structured[0].Value(ObjectiveKind.Macs));
        Assert.True(structured[0].Value(ObjectiveKind.Macs) < baseline.Value(ObjectiveKind.Macs));
        Assert.True(structured[1].Value(ObjectiveKind.Energy) < baseline.Value(ObjectiveKind.Energy));

        // Provenance: accuracy scored on the named splits through ML.NET, energy an estimate that says so.
        var accuracy = structured[0].Values.Single(v => v.Kind == ObjectiveKind.Accuracy);
        Assert.Equal("validation", accuracy.Provenance.Split);
        Assert.Contains("fine-tuned", accuracy.Fidelity);
        Assert.Equal("test", structured[0].TestAccuracy!.Provenance.Split);
        var rescored = new ClassifierScorer(new MLContext(seed: 0)).Score(Path.Combine(result.RunDirectory, structured[0].ModelPath!), data.Validation, "validation");
        Assert.Equal(rescored.Top1, accuracy.Value, 6);
        var energy = structured[0].Values.Single(v => v.Kind == ObjectiveKind.Energy);
        Assert.Equal(ProvenanceKind.Estimated, energy.Provenance.Kind);
        Assert.Equal("raspberry-pi-4b", energy.Provenance.Profile);

        // The best method at each amount is the most accurate point there.
        foreach (double amount in options.Amounts)
        {
            var winner = result.BestMethods.Single(w => w.Cost is null && w.Limit == amount);
            double best = points.Where(p => p.Amount == amount).Max(p => p.Value(ObjectiveKind.Accuracy)!.Value);
            Assert.Equal(best, winner.Best!.Value(ObjectiveKind.Accuracy));
            Assert.Equal(PruningFamily.Structured, winner.BestStructured!.Family);
        }
        // Only structured pruning fits half the MACs.
        var halfMacs = result.BestMethods.Single(w => w.Cost == ObjectiveKind.Macs && w.Limit == 0.5);
        Assert.Equal("l1", halfMacs.Best?.Method);
        Assert.Null(halfMacs.BestUnstructured);

        // Outputs: every value with its provenance, the plots, the report.
        string run = options.OutputDirectory;
        var csv = Csv.Read(Path.Combine(run, "points.csv"));
        Assert.Equal(8, csv.Count);
        var header = csv[0].ToList();
        foreach (var row in csv.Skip(1))
            foreach (string column in new[] { "accuracy", "macs", "compressed-bytes", "energy", "latency", "params_nonzero" })
                Assert.NotEmpty(row[header.IndexOf(column + "_provenance")]);
        foreach (string file in new[] { "comparison.db", "best.csv", "report.html", "plots/accuracy-vs-amount.png", "plots/accuracy-vs-amount.svg",
                                        "plots/accuracy-vs-energy.png", "plots/accuracy-vs-compressed-bytes.svg", "plots/accuracy-vs-latency.png" })
            Assert.True(File.Exists(Path.Combine(run, file)), $"{file} is missing");
        string html = File.ReadAllText(Path.Combine(run, "report.html"));
        Assert.Contains("Best method at each budget", html);
        Assert.Contains("estimated, not measured", html);
        // One legend entry per method; unstructured ones are drawn dashed and say so.
        var legend = System.Xml.Linq.XDocument.Load(Path.Combine(run, "plots/accuracy-vs-amount.svg")).Descendants()
                                              .Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToList();
        Assert.Contains("magnitude-global (unstructured)", legend);
        Assert.Contains("magnitude-layer (unstructured)", legend);
        Assert.Contains("l1", legend);
        Assert.Equal(result.Points.Count, ComparisonResult.Load(run).Points.Count);
    }

    [Fact]
    public async Task AStoppedComparisonResumesWithoutRedoingStoredPoints()
    {
        var (model, data) = Setup.Value;
        var options = Options("resumed", "l1", "magnitude-global") with { FineTuneEpochs = 0 };
        using var stop = new CancellationTokenSource();
        var first = await new MethodComparison(new MLContext(seed: 0), options)
            .RunAsync(model, data, new SynchronousProgress<ComparisonProgress>(p => { if (p.Completed == 3) stop.Cancel(); }), stop.Token);
        Assert.Equal(StudyStatus.Stopped, first.Status);
        Assert.Equal(3, first.Points.Count); // the baseline and two points

        var mismatch = await Assert.ThrowsAsync<ArgumentException>(() =>
            new MethodComparison(new MLContext(seed: 0), options with { Resume = true, FineTuneEpochs = 1 }).RunAsync(model, data));
        Assert.Contains("fine-tuning epochs", mismatch.Message);
        var fresh = await Assert.ThrowsAsync<InvalidOperationException>(() => new MethodComparison(new MLContext(seed: 0), options).RunAsync(model, data));
        Assert.Contains("already holds a comparison", fresh.Message);

        // Resumed with one more amount: only the missing points are evaluated, the stored ones are kept as they were.
        var evaluated = new List<ComparisonPoint>();
        var resumed = await new MethodComparison(new MLContext(seed: 0), options with { Resume = true, Amounts = [0.3, 0.6, 0.8] })
            .RunAsync(model, data, new SynchronousProgress<ComparisonProgress>(p => { if (p.Point is not null) evaluated.Add(p.Point); }));
        Assert.Equal(StudyStatus.Finished, resumed.Status);
        Assert.Equal(4, evaluated.Count);
        Assert.DoesNotContain(evaluated, p => first.Points.Any(f => f.Method == p.Method && f.Amount == p.Amount));
        Assert.Equal(7, resumed.Points.Count);
        string Json(ComparisonPoint p) => JsonSerializer.Serialize(p);
        Assert.Equal(first.Points.Select(Json), resumed.Points.Take(3).Select(Json));
    }

    [Fact]
    public async Task StructuredMethodsRoundKeptChannelsToTheMultipleAsked()
    {
        var (model, data) = Setup.Value;
        static IEnumerable<long> ConvWidths(ModelProto m)
        {
            var graph = new OnnxGraph(m);
            return graph.Nodes.Where(n => n.OpType == "Conv").Select(n => graph.Constant(n.Input[1])!.Dims[0]);
        }
        // Unrounded, a 30 % cut of SimpleCnn's 8/8/16/16 filters leaves widths that are not multiples of 4.
        var unrounded = StructuredPruner.Prune(new ChannelSelection(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.3));
        Assert.Contains(ConvWidths(unrounded), w => w % 4 != 0);

        var options = Options("rounded", "l1", "magnitude-global") with { RoundTo = 4, SaveModels = true, FineTuneEpochs = 0 };
        var result = await new MethodComparison(new MLContext(seed: 0), options).RunAsync(model, data);
        var points = result.PointsOf(ComparisonTasks.All);
        Assert.Equal(4, points.Count);
        foreach (var p in points.Where(p => p.Family == PruningFamily.Structured))
        {
            var widths = ConvWidths(OnnxModel.Load(Path.Combine(result.RunDirectory, p.ModelPath!))).ToList();
            Assert.All(widths, w => Assert.True(w % 4 == 0, $"l1 {p.Amount}: widths {string.Join(", ", widths)}"));
            Assert.True(p.Value(ObjectiveKind.Macs) < result.Baseline(ComparisonTasks.All)!.Value(ObjectiveKind.Macs));
        }
        // Unstructured points are not rounded (they remove no channel), and a resume must round alike.
        Assert.All(points.Where(p => p.Family == PruningFamily.Unstructured), p =>
            Assert.Equal(result.Baseline(ComparisonTasks.All)!.Value(ObjectiveKind.Macs), p.Value(ObjectiveKind.Macs)));
        var mismatch = await Assert.ThrowsAsync<ArgumentException>(() =>
            new MethodComparison(new MLContext(seed: 0), options with { Resume = true, RoundTo = 1 }).RunAsync(model, data));
        Assert.Contains("channel rounding", mismatch.Message);
    }

    [Fact]
    public async Task AFailedPointIsStoredWithItsReasonAndTheRunGoesOn()
    {
        var (model, data) = Setup.Value;
        var folded = ModelSurgery.FoldBatchNorm(model); // no BatchNormalization left: the bn criterion has nothing to rank by
        var options = Options("failing", "bn", "l1") with { FineTuneEpochs = 0, Amounts = [0.5] };
        var result = await new MethodComparison(new MLContext(seed: 0), options).RunAsync(folded, data);
        Assert.Equal(StudyStatus.Finished, result.Status);
        var failed = Assert.Single(result.Points, p => p.Failed);
        Assert.Equal("bn", failed.Method);
        Assert.Contains("has no BatchNormalization", failed.Error);
        Assert.False(result.Points.Single(p => p.Method == "l1").Failed);
        Assert.Contains("has no BatchNormalization", File.ReadAllText(Path.Combine(options.OutputDirectory, "points.csv")));
    }

    [Fact]
    public async Task ASpecialisedModelHasTheSubsetsClassifierAndIsScoredOnTheSubset()
    {
        var (model, data) = Setup.Value;
        int[] classes = [0, 2, 5];
        var options = Options("specialised", "l1", "lrp") with { Amounts = [0.3, 0.6], Classes = classes, SaveModels = true, FineTuneStepsPerEpoch = 2 };
        var result = await new MethodComparison(new MLContext(seed: 0), options).RunAsync(model, data);

        string task = ComparisonTasks.Subset(classes);
        Assert.Equal([ComparisonTasks.All, task], result.Tasks);
        Assert.All(result.Points, p => Assert.False(p.Failed, p.Error));
        var subsetData = data.Validation.Subset(classes);
        foreach (var p in result.PointsOf(task).Prepend(result.Baseline(task)!))
        {
            var accuracy = p.Values.Single(v => v.Kind == ObjectiveKind.Accuracy);
            Assert.Contains("[classes 0,2,5]", accuracy.Provenance.Dataset);
            if (p.ModelPath is null) continue;
            string path = Path.Combine(result.RunDirectory, p.ModelPath);
            var saved = OnnxModel.Load(path);
            Assert.Equal([1, 3], ModelCost.Analyze(saved).OutputShape);
            Assert.Equal(classes.Select(c => data.Train.ClassNames[c]), ModelInterface.Read(saved)!.ClassNames);
            Assert.Equal(new ClassifierScorer(new MLContext(seed: 0)).Score(path, subsetData, "validation").Top1, accuracy.Value, 6);
        }
        Assert.True(File.Exists(Path.Combine(result.RunDirectory, "models", "specialised-classes-0-2-5.onnx")));

        // The gain table: per criterion, the largest amount within one point of each task's own baseline.
        Assert.Equal(["l1", "lrp"], result.Specialisation.Select(g => g.Method));
        double Largest(string t, string method)
        {
            double threshold = result.Baseline(t)!.Value(ObjectiveKind.Accuracy)!.Value - 0.01;
            return result.Points.Where(p => p.Task == t && p.Method == method && p.Value(ObjectiveKind.Accuracy) >= threshold)
                                .Select(p => p.Amount).DefaultIfEmpty(0).Max();
        }
        foreach (var g in result.Specialisation)
        {
            Assert.Equal(Largest(ComparisonTasks.All, g.Method), g.AllClassesAmount);
            Assert.Equal(Largest(task, g.Method), g.SubsetAmount);
            Assert.Equal(g.SubsetAmount - g.AllClassesAmount, g.Gain);
        }
        Assert.Equal(3, Csv.Read(Path.Combine(options.OutputDirectory, "specialisation.csv")).Count);
        Assert.True(File.Exists(Path.Combine(options.OutputDirectory, "plots", "accuracy-vs-amount-classes-0-2-5.png")));
        Assert.Contains("Task specialisation", File.ReadAllText(Path.Combine(options.OutputDirectory, "report.html")));
    }

    [Fact]
    public void MethodsAndClassesParseByName()
    {
        Assert.Equal(PruningFamily.Unstructured, PruningMethod.Parse("Magnitude-Global").Family);
        Assert.Equal(PruningFamily.Structured, PruningMethod.Parse("lrp").Family);
        Assert.True(PruningMethod.Parse("taylor").NeedsData);
        Assert.False(PruningMethod.Parse("fpgm").NeedsData);
        Assert.Equal(9, PruningMethod.Default.Count);
        var unknown = Assert.Throws<ArgumentException>(() => PruningMethod.ParseList("l1,magic"));
        Assert.Contains("unknown pruning method 'magic'", unknown.Message);
        Assert.Contains("magnitude-layer", unknown.Message);
        Assert.Contains("listed twice", Assert.Throws<ArgumentException>(() => PruningMethod.ParseList("l1,L1")).Message);

        string[] names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal"];
        Assert.Equal([1, 5, 0], ClassSubset.Resolve(["trouser", " SANDAL ", "0"], names));
        var missing = Assert.Throws<ArgumentException>(() => ClassSubset.Resolve(["unicorn"], names));
        Assert.Contains("unknown class 'unicorn'", missing.Message);
        Assert.Contains("1 Trouser", missing.Message);
        Assert.Throws<ArgumentException>(() => ClassSubset.Resolve(["9"], names));
        Assert.Throws<ArgumentException>(() => new MethodComparison(new MLContext(), new ComparisonOptions { OutputDirectory = "x", Amounts = [0.5, 1.0] }));
        Assert.Throws<ArgumentException>(() => new MethodComparison(new MLContext(), new ComparisonOptions { OutputDirectory = "x", Classes = [3] }));
    }

    /// <summary>Reports on the calling thread, so the test sees every report before RunAsync returns.</summary>
    sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
