using Microsoft.ML;
using Microsoft.ML.Data;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Optimizer.Tests.Search;

/// <summary>The whole search on a tiny model and a few hundred images: stages, store, resume, failures, outputs, ML.NET.</summary>
public sealed class PruningSearchTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("search-").FullName;

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
        // On the reference kernels: the fixture must be a trained model on any CPU, and under CI's injected kernel fault
        // too (tests of what pruning costs need a model whose groups matter).
        using var module = new OnnxModule(model) { Kernels = new ConvKernelPlan { ReferenceOnly = true } };
        Trainer.Train(module, train, null, new TrainingOptions { Epochs = 1, MaxStepsPerEpoch = 10, BatchSize = 60, LearningRate = 0.05, Threads = 2 });
        return (module.WriteBack(), new SearchData(train, validation, test, "Fashion-MNIST sample, 600/160/160 images"));
    });

    PruningSearchOptions Options(string name, string sampler = "random", int trials = 6) => new()
    {
        OutputDirectory = Path.Combine(directory, name),
        Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs, ObjectiveKind.Energy],
        Constraints = ConstraintSet.Parse(["macs <= 0.7*baseline", "accuracy >= baseline - 0.5"]),
        Sampler = Samplers.Parse(sampler),
        Trials = trials,
        Seed = 4,
        Threads = 2,
        Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 2, PromotionSteps = 3, FinalCount = 2, FinalStepsPerEpoch = 4 },
    };

    [Fact]
    public async Task TheUniformBaselineJoinsEveryStageFineTunedAlikeAndTheReportGivesTheMargin()
    {
        var (model, data) = Setup.Value;
        var options = Options("uniform", sampler: "random", trials: 3) with
        {
            Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
            Constraints = ConstraintSet.Parse(["macs <= 0.5*baseline"]),
            Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 1, PromotionSteps = 3, FinalCount = 1, FinalStepsPerEpoch = 4 },
        };
        // With no IProgress given, progress goes to ML.NET's own log event, as ML.NET's trainers' does.
        var mlContext = new MLContext(seed: 0);
        var logged = new List<string>();
        mlContext.Log += (_, e) => { if (e.Source == "ParetoPrune.Search") lock (logged) logged.Add(e.Message); };
        var result = await new PruningSearch(mlContext, options).RunAsync(model, data);
        Assert.Contains(logged, m => m.Contains("evaluating the unpruned model"));
        Assert.Contains(logged, m => m.Contains("screening 4/4"));
        Assert.Contains(logged, m => m.Contains("final 1/1"));

        // Uniform pruning at the bound, found independently: the largest fraction, the same in every group, under the bound.
        var space = new SearchSpace(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1));
        var expected = Enumerable.Range(1, 1000).Select(i => space.Uniform(1 - i / 1000.0)).First(k => space.Costs(k).Macs <= 0.5 * space.BaseMacs);
        // The random sampler did not propose it: it joined as one more trial, after the sampler's three.
        Assert.Equal(4, result.Trials.Count);
        var uniform = result.Trials[3];
        Assert.Equal("uniform", uniform.Sampler);
        Assert.Equal(expected, uniform.Kept);
        Assert.All(result.Trials.Take(3), t => Assert.Equal("random", t.Sampler));
        // Promoted and fine-tuned with the stage's single pick (itself, or another trial beside it), with the same steps.
        Assert.NotNull(uniform.At(SearchStage.Promotion));
        Assert.NotNull(uniform.At(SearchStage.Final));
        Assert.InRange(result.Trials.Count(t => t.At(SearchStage.Promotion) is not null), 1, 2);
        var finals = result.Trials.Where(t => t.At(SearchStage.Final) is not null).ToList();
        Assert.InRange(finals.Count, 1, 2);
        Assert.All(finals, t => Assert.NotNull(t.At(SearchStage.Promotion)));
        Assert.Single(finals.Select(t => t.At(SearchStage.Final)!.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Fidelity).Distinct());
        Assert.Equal(3, result.UniformBaseline!.Trial);
        Assert.Equal(uniform.At(SearchStage.Final)!.Value(ObjectiveKind.Accuracy), result.UniformBaseline.Value(ObjectiveKind.Accuracy));

        // The recommendation weighs the answer against it: the search's answer is never one it beats on validation.
        var best = result.Best()!;
        Assert.True(best.Value(ObjectiveKind.Accuracy) >= result.UniformBaseline.Value(ObjectiveKind.Accuracy));
        var comparison = Recommendation.For(result).Uniform!;
        Assert.Equal(best.Value(ObjectiveKind.Accuracy) - result.UniformBaseline.Value(ObjectiveKind.Accuracy), comparison.ValidationMargin, 12);
        Assert.Equal(best.TestAccuracy!.Value - result.UniformBaseline.TestAccuracy!.Value, comparison.TestMargin!.Value, 12);
        Assert.Equal(best.Trial == 3, comparison.IsAnswer);
        Assert.Equal(expected.Sum() / (double)space.Dimensions.Sum(d => d.Size), comparison.KeptFraction, 12);
        string report = File.ReadAllText(Path.Combine(options.OutputDirectory, "report.html"));
        Assert.Contains("uniform pruning at the same bound", report);
        // Loaded again from the store (the report command): the same baseline.
        Assert.Equal(3, PruningSearchResult.Load(options.OutputDirectory).UniformBaseline!.Trial);

        // Turned off: the sampler's trials only, and nothing to compare with.
        var off = await new PruningSearch(new MLContext(seed: 0), options with { OutputDirectory = Path.Combine(directory, "no-uniform"), UniformBaseline = false })
            .RunAsync(model, data);
        Assert.Equal(3, off.Trials.Count);
        Assert.Null(off.UniformBaseline);
        Assert.Null(Recommendation.For(off).Uniform);
        Assert.Null(Recommendation.For(off).UniformAbsence);

        // Without a cost bound there is no uniform pruning "at the bound": no extra trial, and the card says why.
        var unbounded = await new PruningSearch(new MLContext(seed: 0), options with
        {
            OutputDirectory = Path.Combine(directory, "unbounded"), Trials = 2, Constraints = ConstraintSet.Parse(["accuracy >= baseline - 0.5"]),
        }).RunAsync(model, data);
        Assert.Equal(2, unbounded.Trials.Count);
        Assert.Null(unbounded.UniformBaseline);
        Assert.Contains("no cost bound", Recommendation.For(unbounded).UniformAbsence);
    }

    [Fact]
    public async Task AGreedySearchWalksDownToTheBoundAndRefusesWhatItCannotDo()
    {
        var (model, data) = Setup.Value;
        int dimensions = new SearchSpace(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1)).Count;
        var options = Options("greedy", sampler: "greedy", trials: 3 * dimensions) with
        {
            Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Params],
            Constraints = ConstraintSet.Parse(["params <= 0.4*baseline"]),
            UniformBaseline = false,
            Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 2, PromotionSteps = 2, FinalCount = 1, FinalStepsPerEpoch = 2 },
        };
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data);
        Assert.Equal(StudyStatus.Finished, result.Status);
        Assert.All(result.Trials, t => Assert.Equal("greedy", t.Sampler));
        // Each trial shrinks one group of an earlier configuration (the incumbent) or of the full model.
        var full = result.Dimensions.Select(d => d.Size).ToArray();
        foreach (var t in result.Trials)
            Assert.Contains(result.Trials.Where(o => o.Number < t.Number).Select(o => o.Kept).Prepend(full),
                            before => before.Zip(t.Kept).Count(p => p.First != p.Second) == 1 && before.Zip(t.Kept).All(p => p.Second <= p.First));
        // The walk ends on the bound: the answer meets it, and params only fell from one iteration's targets to the next.
        var best = result.Best()!;
        Assert.True(best.Value(ObjectiveKind.Params) <= 0.4 * result.Baseline.Value(ObjectiveKind.Params));

        // No cost bound to walk to, or trials screened in parallel: refused before the first trial, with the reason.
        var unbounded = options with { OutputDirectory = Path.Combine(directory, "greedy-unbounded"), Constraints = ConstraintSet.Parse(["accuracy >= baseline - 0.5"]) };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(seed: 0), unbounded).RunAsync(model, data));
        Assert.Contains("cost bound", e.Message);
        Assert.False(Directory.Exists(unbounded.OutputDirectory));
        var parallel = options with { OutputDirectory = Path.Combine(directory, "greedy-parallel"), Parallelism = 2 };
        e = await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(seed: 0), parallel).RunAsync(model, data));
        Assert.Contains("--parallel 1", e.Message);
    }

    [Fact]
    public async Task ASearchScreensPromotesExportsAndReports()
    {
        var (model, data) = Setup.Value;
        var progress = new List<SearchProgress>();
        var options = Options("run", sampler: "bo", trials: 7);
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data, new SynchronousProgress<SearchProgress>(progress.Add));

        Assert.Equal(StudyStatus.Finished, result.Status);
        Assert.Equal(7, result.Trials.Count); // the optimiser's first design point is uniform pruning at the bound: no extra trial
        Assert.All(result.Trials, t => Assert.Equal(TrialState.Complete, t.State));
        // Two picks per stage, and the uniform baseline (trial 0) beside them where they do not include it.
        Assert.Equal(0, result.UniformBaseline!.Trial);
        foreach (var stage in new[] { SearchStage.Promotion, SearchStage.Final })
        {
            Assert.NotNull(result.Trials[0].At(stage));
            int others = result.Trials.Count(t => t.At(stage) is not null && t.Number != 0);
            Assert.InRange(others, 1, 2); // one when the uniform baseline was itself a pick
        }
        Assert.Contains(progress, p => p.Stage == SearchStage.Screening && p.Completed == 7);
        Assert.Contains(progress, p => p.Stage == SearchStage.Final);

        // Every screened trial meets the MAC bound (infeasible configurations are never built) and its MACs are exact.
        foreach (var t in result.Trials)
        {
            var macs = t.At(SearchStage.Screening)!.Value(ObjectiveKind.Macs);
            Assert.True(macs <= 0.7 * result.Baseline.Value(ObjectiveKind.Macs));
        }
        // Energy is an estimate and says so; accuracy says which split it was scored on.
        var energy = result.Trials[0].At(SearchStage.Screening)!.Values.Single(v => v.Kind == ObjectiveKind.Energy);
        Assert.Equal(ProvenanceKind.Estimated, energy.Provenance.Kind);
        Assert.Equal("raspberry-pi-4b", energy.Provenance.Profile);
        Assert.Equal("validation", result.Trials[0].At(SearchStage.Screening)!.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Provenance.Split);

        // The exported front: files that ONNX Runtime runs through ML.NET, with the recorded figures.
        Assert.NotEmpty(result.Front);
        foreach (var candidate in result.Front)
        {
            Assert.True(File.Exists(candidate.ModelPath));
            var exported = OnnxModel.Load(candidate.ModelPath);
            Assert.DoesNotContain(exported.Graph.Node, n => n.OpType == "BatchNormalization");
            Assert.NotNull(ModelInterface.Read(exported));
            Assert.Equal(result.Trials.Single(t => t.Number == candidate.Trial).At(SearchStage.Screening)!.Value(ObjectiveKind.Macs), candidate.Value(ObjectiveKind.Macs));
            Assert.True(ModelCost.Analyze(exported).Macs <= candidate.Value(ObjectiveKind.Macs)); // folding BN only removes work
            var rescored = new ClassifierScorer(new MLContext(seed: 0)).Score(candidate.ModelPath, data.Test!, "test");
            Assert.Equal(candidate.TestAccuracy!.Value, rescored.Top1, 6);
            var validation = new ClassifierScorer(new MLContext(seed: 0)).Score(candidate.ModelPath, data.Validation, "validation");
            Assert.Equal(candidate.Value(ObjectiveKind.Accuracy), validation.Top1, 6);
        }

        // Outputs on disk.
        string run = options.OutputDirectory;
        foreach (var file in new[] { "study.db", "trials.csv", "pareto.csv", "report.html", "plots/front-accuracy-macs.png", "plots/front-accuracy-macs.svg",
                                     "plots/front-accuracy-energy.png", "plots/hypervolume.svg", "plots/kept-filters.png" })
            Assert.True(File.Exists(Path.Combine(run, file)), $"{file} is missing");
        Assert.Equal(8, File.ReadAllLines(Path.Combine(run, "trials.csv")).Length);
        // pareto.csv is the fine-tuned front: final-stage trials only, none dominating another (checked here by definition).
        var pareto = Optimizer.Reporting.Csv.Read(Path.Combine(run, "pareto.csv"));
        Assert.Equal(result.Front.Count + 1, pareto.Count);
        Assert.Equal(["accuracy", "macs", "energy_mJ"], pareto[0].Where(h => h is "accuracy" or "macs" || h.StartsWith("energy_m")));  // units in the headers
        var paretoTrials = pareto.Skip(1).Select(r => result.Trials.Single(t => t.Number == int.Parse(r[0]))).ToList();
        Assert.All(paretoTrials, t => Assert.NotNull(t.At(SearchStage.Final)));
        Assert.All(pareto.Skip(1), r => Assert.StartsWith("fine-tuned", r[pareto[0].ToList().IndexOf("accuracy_fidelity")]));
        foreach (var a in paretoTrials)
            foreach (var b in paretoTrials.Where(b => b != a))
            {
                var (x, y) = (a.At(SearchStage.Final)!, b.At(SearchStage.Final)!);
                bool noWorse = x.Value(ObjectiveKind.Accuracy) >= y.Value(ObjectiveKind.Accuracy) && x.Value(ObjectiveKind.Macs) <= y.Value(ObjectiveKind.Macs)
                               && x.Value(ObjectiveKind.Energy) <= y.Value(ObjectiveKind.Energy);
                bool better = x.Value(ObjectiveKind.Accuracy) > y.Value(ObjectiveKind.Accuracy) || x.Value(ObjectiveKind.Macs) < y.Value(ObjectiveKind.Macs)
                              || x.Value(ObjectiveKind.Energy) < y.Value(ObjectiveKind.Energy);
                Assert.False(noWorse && better, $"trial {a.Number} dominates trial {b.Number} on the exported front");
            }

        // Screening fine-tunes a few steps after recalibration, and says so; the time is booked under fine-tune.
        var screening = result.Trials[0].At(SearchStage.Screening)!;
        Assert.Equal("bn-recalibrated (2 batches), fine-tuned 2 steps", screening.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Fidelity);
        Assert.True(screening.Seconds.ContainsKey("fine-tune"));

        // The most accurate promoted trial that meets every constraint is fine-tuned to the end (what export picks for a user).
        var constraints = options.Constraints;
        var promotedFeasible = result.Trials.Where(t => t.At(SearchStage.Promotion) is { } r && constraints.TotalViolation(r.ToDictionary(), result.Baseline.ToDictionary()) == 0).ToList();
        if (promotedFeasible.Count > 0)
            Assert.NotNull(promotedFeasible.MaxBy(t => t.At(SearchStage.Promotion)!.Value(ObjectiveKind.Accuracy))!.At(SearchStage.Final));

        // How well each stage ranked the next: the pairs are the trials that reached both stages.
        var correlations = result.FidelityCorrelations.ToDictionary(c => (c.From, c.To));
        int promoted = result.Trials.Count(t => t.At(SearchStage.Promotion) is not null), finals = result.Trials.Count(t => t.At(SearchStage.Final) is not null);
        Assert.Equal(promoted, correlations[(SearchStage.Screening, SearchStage.Promotion)].Pairs);
        if (promoted < 3) Assert.Null(correlations[(SearchStage.Screening, SearchStage.Promotion)].Spearman); // two pairs rank nothing
        Assert.Equal(finals, correlations[(SearchStage.Promotion, SearchStage.Final)].Pairs);
        string html = File.ReadAllText(Path.Combine(run, "report.html"));
        Assert.Contains("estimated, not measured", html);
        Assert.Contains("Rank correlation between stages", html);
        // The plots name each fidelity: the front is the fine-tuned one, screening points are labelled as such.
        string svg = File.ReadAllText(Path.Combine(run, "plots/front-accuracy-macs.svg"));
        Assert.Contains("fine-tuned front", svg);
        Assert.Contains("screening (bn-recalibrated (2 batches), fine-tuned 2 steps)", svg);
        foreach (var exported in result.Trials.Where(t => t.At(SearchStage.Final) is not null)) // every exported model named, uniform pruning as such
            Assert.Matches($@">\s*trial {exported.Number}{(exported.Number == result.UniformBaseline?.Trial ? @" \(uniform\)" : "")}\s*<", svg);
        string energySvg = File.ReadAllText(Path.Combine(run, "plots/front-accuracy-energy.svg"));
        Assert.Contains("energy per inference (mJ), Raspberry Pi 4B, estimated", energySvg); // a short axis title with its unit
        Assert.Contains("energy: estimated, not measured: profile", energySvg);               // the whole provenance under the title
        var plotted = Optimizer.Reporting.SearchReport.HypervolumeSeries("bo", result.HypervolumeTrace);
        Assert.Equal(result.Trials.Select(t => (double)t.Number), plotted.X); // trials numbered as in the tables
        Assert.Contains("<svg", html);
        Assert.Equal(7, result.HypervolumeTrace.Count);
        for (int i = 1; i < 7; i++) Assert.True(result.HypervolumeTrace[i] >= result.HypervolumeTrace[i - 1] - 1e-12);

        // Reloading the run gives the same answer (what report and export do).
        var reloaded = PruningSearchResult.Load(run);
        Assert.Equal(result.Front.Select(c => c.Trial), reloaded.Front.Select(c => c.Trial));
        Assert.Equal(result.Best()?.Trial, reloaded.Best()?.Trial);
    }

    [Fact]
    public async Task TheChosenModelIsAnMlNetTransformerGivingTheModelsLogits()
    {
        var (model, data) = Setup.Value;
        var result = await new PruningSearch(new MLContext(seed: 0), Options("mlnet") with { Trials = 3 }).RunAsync(model, data);
        var best = result.Best(ConstraintSet.Empty) ?? throw new Xunit.Sdk.XunitException("no front member");
        var mlContext = new MLContext(seed: 0);
        var transformer = result.CreateTransformer(best);
        var graph = new OnnxGraph(OnnxModel.Load(best.ModelPath));
        var rows = Enumerable.Range(0, 4).Select(i => new Pixels { Input = data.Test!.Image(i).ToArray() }).ToList();
        var definition = Microsoft.ML.Data.SchemaDefinition.Create(typeof(Pixels));
        var column = definition[nameof(Pixels.Input)];
        column.ColumnType = new VectorDataViewType(NumberDataViewType.Single, 784);
        column.ColumnName = graph.Inputs[0].Name;
        var scored = transformer.Transform(mlContext.Data.LoadFromEnumerable(rows, definition));
        var logits = scored.GetColumn<float[]>(graph.Outputs[0].Name).ToList();
        for (int i = 0; i < rows.Count; i++)
        {
            var expected = TestModels.Run(OnnxModel.Load(best.ModelPath), rows[i].Input, [1, 1, 28, 28]);
            TestModels.AssertClose(expected, logits[i]);
        }
    }

    sealed class Pixels
    {
        public float[] Input { get; set; } = [];
    }

    [Fact]
    public async Task TheSensitivityPriorProbesEachGroupOnceAndShapesTheSecondDesignPoint()
    {
        var (model, data) = Setup.Value;
        PruningSearchOptions Bounded(string name, bool prior) => Options(name, "bo", trials: 4) with
        {
            Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
            Constraints = ConstraintSet.Parse(["macs <= 0.5*baseline"]),
            Fidelity = NoFineTuning,
            BoundFocus = 1,
            // The probes and the design point alone (the benchmark's bo-sens), recalibrated only: the whole prior is below.
            Levers = prior ? new SensitivityLevers(Probe: true, ProbeSteps: 0, Carry: false, SelectMostAccurate: false) : null,
        };
        async Task<(PruningSearchResult Result, List<string> Logged, double[] Drops)> Run(string name, bool prior, int probeSteps = 0)
        {
            var mlContext = new MLContext(seed: 0);
            var logged = new List<string>();
            mlContext.Log += (_, e) => { if (e.Source == "ParetoPrune.Search") lock (logged) logged.Add(e.Message); };
            var options = Bounded(name, prior);
            if (probeSteps > 0) options = options with { Levers = options.Levers! with { ProbeSteps = probeSteps } };
            var result = await new PruningSearch(mlContext, options).RunAsync(model, data);
            using var store = StudyStore.Open(Path.Combine(directory, name, "study.db"));
            var stored = store.Backend.Get("sensitivity");
            return (result, logged, stored is null ? [] : System.Text.Json.JsonSerializer.Deserialize<double[]>(stored)!);
        }
        var (informed, logged, drops) = await Run("informed", prior: true);
        var (plain, plainLogged, none) = await Run("plain", prior: false);

        // One probe per group, kept with the study: losses of accuracy, each a fraction, and some group's cut costs some.
        int groups = new SearchSpace(ChannelGroups.Analyze(model), new WeightImportance(WeightImportance.Criterion.L1)).Count;
        Assert.Equal(groups, drops.Length);
        Assert.All(drops, d => Assert.InRange(d, 0, 1));
        Assert.Contains(drops, d => d > 0);
        Assert.Contains(logged, m => m.Contains($"probing layer sensitivity {groups}/{groups}"));
        Assert.Empty(none);
        Assert.DoesNotContain(plainLogged, m => m.Contains("probing"));
        // The design: uniform pruning at the bound, then the sensitivity-shaped point, then the cost-shaped one (α = 1),
        // which the plain search proposes second.
        Assert.Equal(plain.Trials[0].Kept, informed.Trials[0].Kept);
        Assert.Equal(plain.Trials[1].Kept, informed.Trials[2].Kept);
        Assert.NotEqual(plain.Trials[1].Kept, informed.Trials[1].Kept);
        Assert.All(informed.Trials, t => Assert.True(t.At(SearchStage.Screening)!.Value(ObjectiveKind.Macs) <= 0.5 * informed.Baseline.Value(ObjectiveKind.Macs)));
        // The probes are deterministic (ATen, recalibrated with seed 0): a second study probes and proposes the same.
        var (again, _, dropsAgain) = await Run("again", prior: true);
        Assert.Equal(drops, dropsAgain);
        Assert.Equal(informed.Trials.Select(t => SearchSpace.Key(t.Kept)), again.Trials.Select(t => SearchSpace.Key(t.Kept)));

        // Probes fine-tuned briefly (NetAdapt's way) measure what a cut costs once trained: other losses.
        var (_, tunedLogged, tunedDrops) = await Run("tuned", prior: true, probeSteps: 3);
        Assert.Contains(tunedLogged, m => m.Contains($"probing layer sensitivity {groups}/{groups} (pruned, recalibrated, 3 steps)"));
        Assert.Equal(groups, tunedDrops.Length);
        Assert.NotEqual(drops, tunedDrops);

        // The whole prior (--sensitivity-prior), kept with the study: probes fine-tuned as long as a screening, and the shaped
        // point promoted and fine-tuned to the end beside the uniform baseline, one pick of each stage aside, whatever
        // screening made of it.
        var wholeLog = new List<string>();
        var wholeContext = new MLContext(seed: 0);
        wholeContext.Log += (_, e) => { if (e.Source == "ParetoPrune.Search") lock (wholeLog) wholeLog.Add(e.Message); };
        var carried = await new PruningSearch(wholeContext, Bounded("carried", prior: false) with
        {
            SensitivityPrior = true,
            Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 1, PromotionSteps = 2, FinalCount = 1, FinalStepsPerEpoch = 2 },
        }).RunAsync(model, data);
        Assert.True(carried.Definition.SensitivityPrior);
        Assert.Contains(wholeLog, m => m.Contains($"probing layer sensitivity {groups}/{groups} (pruned, recalibrated, 2 steps)"));
        using (var store = StudyStore.Open(Path.Combine(directory, "carried", "study.db")))
            Assert.Equal(groups, System.Text.Json.JsonSerializer.Deserialize<double[]>(store.Backend.Get("sensitivity")!)!.Length);
        Assert.Equal("bo", carried.Trials[1].Sampler);
        Assert.NotEqual(carried.Trials[0].Kept, carried.Trials[1].Kept);
        var finals = carried.Trials.Where(t => t.At(SearchStage.Final) is not null).Select(t => t.Number).ToList();
        Assert.Contains(1, finals);
        Assert.Contains(0, finals); // the uniform baseline
        Assert.InRange(finals.Count, 2, 3);
    }

    [Fact]
    public async Task SelectingTheMostAccurateFineTunesTheBestScreenedTrialsUnderTheBound()
    {
        var (model, data) = Setup.Value;
        var options = Options("top", "random", trials: 6) with
        {
            Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
            Constraints = ConstraintSet.Parse(["macs <= 0.6*baseline"]),
            UniformBaseline = false,
            Levers = new SensitivityLevers(Probe: false, ProbeSteps: 0, Carry: false, SelectMostAccurate: true),
            Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 3, PromotionSteps = 2, FinalCount = 2, FinalStepsPerEpoch = 2 },
        };
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data);
        double Accuracy(Trial t, SearchStage stage) => t.At(stage)!.Value(ObjectiveKind.Accuracy);
        bool Feasible(Trial t) => t.At(SearchStage.Screening)!.Value(ObjectiveKind.Macs) <= 0.6 * result.Baseline.Value(ObjectiveKind.Macs);
        // Promoted: the three most accurate screened trials within the bound (none outside it, while three are within).
        var screened = result.Trials.Where(t => t.At(SearchStage.Screening) is not null).ToList();
        var expected = screened.Where(Feasible).OrderByDescending(t => Accuracy(t, SearchStage.Screening)).Take(3).Select(t => t.Number).Order();
        Assert.Equal(expected, result.Trials.Where(t => t.At(SearchStage.Promotion) is not null).Select(t => t.Number).Order());
        // Final: the two most accurate promoted ones.
        var promoted = result.Trials.Where(t => t.At(SearchStage.Promotion) is not null).ToList();
        Assert.Equal(promoted.OrderByDescending(t => Accuracy(t, SearchStage.Promotion)).Take(2).Select(t => t.Number).Order(),
                     result.Trials.Where(t => t.At(SearchStage.Final) is not null).Select(t => t.Number).Order());
    }

    [Fact]
    public async Task AStoppedStudyResumesToTheSameTrialsAsAnUninterruptedOne()
    {
        var (model, data) = Setup.Value;
        var uninterrupted = await new PruningSearch(new MLContext(seed: 0), Options("whole", "bo", trials: 6) with { Fidelity = NoFineTuning })
            .RunAsync(model, data);

        // Stop after the third trial (Ctrl-C: the trial in flight finishes and is stored), then resume.
        using var stop = new CancellationTokenSource();
        var options = Options("parts", "bo", trials: 6) with { Fidelity = NoFineTuning };
        var first = await new PruningSearch(new MLContext(seed: 0), options)
            .RunAsync(model, data, new SynchronousProgress<SearchProgress>(p => { if (p.Completed == 3) stop.Cancel(); }), stop.Token);
        Assert.Equal(StudyStatus.Stopped, first.Status);
        Assert.Equal(3, first.Trials.Count);

        var mismatch = await Assert.ThrowsAsync<ArgumentException>(() =>
            new PruningSearch(new MLContext(seed: 0), options with { Resume = true, Sampler = SamplerKind.Random }).RunAsync(model, data));
        Assert.Contains("sampler", mismatch.Message);

        var resumed = await new PruningSearch(new MLContext(seed: 0), options with { Resume = true }).RunAsync(model, data);
        Assert.Equal(StudyStatus.Finished, resumed.Status);
        Assert.Equal(uninterrupted.Trials.Select(t => SearchSpace.Key(t.Kept)), resumed.Trials.Select(t => SearchSpace.Key(t.Kept)));
    }

    [Fact]
    public async Task AStudyStoppedDuringPromotionResumesToTheSamePromotedAndExportedTrials()
    {
        var (model, data) = Setup.Value;
        // Six promoted: two rounds of three, the second steered by the first's results; two exported.
        PruningSearchOptions Two(string name) => Options(name, "random", trials: 8) with
        {
            Fidelity = new FidelityOptions { RecalibrationBatches = 2, ScreeningSteps = 2, BatchSize = 32, PromoteCount = 6, PromotionSteps = 3, FinalCount = 2, FinalStepsPerEpoch = 3 },
        };
        var whole = await new PruningSearch(new MLContext(seed: 0), Two("promote-whole")).RunAsync(model, data);
        // Six picks, and the uniform baseline beside them (one more trial, after the sampler's eight).
        Assert.Equal(9, whole.Trials.Count);
        Assert.Equal(6, whole.Trials.Count(t => t.At(SearchStage.Promotion) is not null && t.Number != 8));
        Assert.NotNull(whole.Trials[8].At(SearchStage.Final));

        using var stop = new CancellationTokenSource();
        var options = Two("promote-parts");
        var first = await new PruningSearch(new MLContext(seed: 0), options)
            .RunAsync(model, data, new SynchronousProgress<SearchProgress>(p => { if (p.Stage == SearchStage.Promotion && p.Completed == 2) stop.Cancel(); }), stop.Token);
        Assert.Equal(StudyStatus.Stopped, first.Status);
        var resumed = await new PruningSearch(new MLContext(seed: 0), options with { Resume = true }).RunAsync(model, data);

        int[] Numbers(PruningSearchResult r, SearchStage stage) => r.Trials.Where(t => t.At(stage) is not null).Select(t => t.Number).Order().ToArray();
        Assert.Equal(Numbers(whole, SearchStage.Promotion), Numbers(resumed, SearchStage.Promotion));
        Assert.Equal(Numbers(whole, SearchStage.Final), Numbers(resumed, SearchStage.Final));
    }

    [FactWithPostgres]
    public async Task ACSharpProgramJoinsAStudyOnTheServerAndFinishesIt()
    {
        var (model, data) = Setup.Value;
        var storage = StudyStorage.Parse(PostgresServer.Shared.NewDatabase());
        var options = Options("first", "bo", trials: 5) with
        {
            Storage = storage, StudyName = "joined", Fidelity = NoFineTuning, Constraints = ConstraintSet.Parse(["macs <= 0.7*baseline"]),
        };
        // The creator stops after its second trial (Ctrl-C: what is in flight finishes and is stored).
        using var stop = new CancellationTokenSource();
        var first = await new PruningSearch(new MLContext(seed: 0), options)
            .RunAsync(model, data, new SynchronousProgress<SearchProgress>(p => { if (p.Completed == 2) stop.Cancel(); }), stop.Token);
        Assert.InRange(first.Trials.Count, 2, 4);

        // Another program joins by name alone: the study's settings and model from the server, its own data, devices, folder.
        var joined = await PruningSearch.JoinAsync(new MLContext(seed: 0), storage, "joined", data, options.Devices, Path.Combine(directory, "second"));
        Assert.Equal(StudyStatus.Finished, joined.Status);
        Assert.Equal(Enumerable.Range(0, 5), joined.Trials.Select(t => t.Number));
        Assert.All(joined.Trials, t => Assert.Equal(TrialState.Complete, t.State));
        // The same trials a single uninterrupted search proposes (the study's sampler, seed and constraints, not defaults).
        var alone = await new PruningSearch(new MLContext(seed: 0), Options("alone", "bo", trials: 5) with
        {
            Fidelity = NoFineTuning, Constraints = ConstraintSet.Parse(["macs <= 0.7*baseline"]),
        }).RunAsync(model, data);
        Assert.Equal(alone.Trials.Select(t => SearchSpace.Key(t.Kept)), joined.Trials.Select(t => SearchSpace.Key(t.Kept)));

        // A program with other data is refused, naming what differs, and nothing is lost.
        var other = new SearchData(data.Train, data.Validation, data.Test, "another dataset");
        var refused = await Assert.ThrowsAnyAsync<Exception>(() => PruningSearch.JoinAsync(new MLContext(seed: 0), storage, "joined", other, options.Devices, Path.Combine(directory, "third")));
        Assert.Contains("data", refused.Message);
        await Assert.ThrowsAsync<StudyNotFoundException>(() => PruningSearch.JoinAsync(new MLContext(seed: 0), storage, "nope", data, options.Devices, directory));
    }

    [Fact]
    public async Task ParallelWorkersShareTheStoreWithoutDuplicates()
    {
        var (model, data) = Setup.Value;
        var options = Options("workers", "bo", trials: 8) with { Workers = 2, Threads = 1, Fidelity = NoFineTuning };
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data);
        Assert.Equal(Enumerable.Range(0, 8), result.Trials.Select(t => t.Number));
        Assert.All(result.Trials, t => Assert.Equal(TrialState.Complete, t.State));
        Assert.Equal(8, result.Trials.Select(t => SearchSpace.Key(t.Kept)).Distinct().Count());
    }

    static readonly FidelityOptions NoFineTuning = new() { RecalibrationBatches = 2, ScreeningSteps = 0, BatchSize = 32, PromoteCount = 0, FinalCount = 0 };

    [Fact]
    public async Task AFailedTrialIsRecordedWithItsReasonAndTheSearchGoesOn()
    {
        var (model, data) = Setup.Value;
        var device = new FailingDevice(new HostDevice(name: "test host"), failOnCall: 3);
        var options = Options("failing") with
        {
            Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Latency],
            Constraints = ConstraintSet.Empty,
            Devices = new DeviceTargets(device, null, null),
            Measurement = new MeasurementPlan { WarmupRuns = 1, MinimumRuns = 3, TimeBudget = TimeSpan.FromMilliseconds(50) },
            Fidelity = NoFineTuning,
        };
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data);
        Assert.Equal(6, result.Trials.Count);
        var failed = Assert.Single(result.Trials, t => t.State == TrialState.Failed);
        Assert.Contains("USB link lost", failed.Error);
        Assert.Equal(1, failed.Number); // call 1 measures the baseline, call 2 trial 0
        var latency = result.Trials[0].At(SearchStage.Screening)!.Values.Single(v => v.Kind == ObjectiveKind.Latency);
        Assert.Equal(ProvenanceKind.Measured, latency.Provenance.Kind);
        Assert.Equal("test host", latency.Provenance.Device);
        Assert.Contains("USB link lost", File.ReadAllText(Path.Combine(options.OutputDirectory, "trials.csv")));
    }

    /// <summary>A real device whose n-th measurement fails, as a Pi dropping off the network would.</summary>
    sealed class FailingDevice(IDevice inner, int failOnCall) : IDevice
    {
        int calls;
        public string Name => inner.Name;

        public Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default) =>
            Interlocked.Increment(ref calls) == failOnCall ? throw new IOException("USB link lost") : inner.MeasureAsync(onnxModel, inputShape, plan, ct);
    }

    [Fact]
    public async Task ImpossibleConstraintsAreExplainedBeforeAnyTrial()
    {
        var (model, data) = Setup.Value;
        var tooSmall = Options("impossible") with { Constraints = ConstraintSet.Parse(["macs <= 0.001*baseline"]) };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(), tooSmall).RunAsync(model, data));
        Assert.Contains("no configuration can meet 'macs <= 0.001*baseline'", error.Message);
        Assert.Contains("minimum kept fraction", error.Message);

        var contradictory = Options("contradictory") with { Constraints = ConstraintSet.Parse(["macs <= 0.3*baseline", "macs >= 0.5*baseline"]) };
        var both = await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(), contradictory).RunAsync(model, data));
        Assert.Contains("cannot all hold", both.Message);

        Assert.Throws<ArgumentException>(() => new PruningSearch(new MLContext(), Options("x") with { Objectives = [ObjectiveKind.Macs], Constraints = ConstraintSet.Empty }));

        // Rejected before its first trial, a search leaves nothing behind: the corrected command starts afresh.
        Assert.False(Directory.Exists(tooSmall.OutputDirectory));
        var corrected = tooSmall with { Constraints = ConstraintSet.Parse(["macs <= 0.5*baseline"]), Trials = 2, Fidelity = NoFineTuning };
        var result = await new PruningSearch(new MLContext(seed: 0), corrected).RunAsync(model, data);
        Assert.Equal(2, result.Trials.Count(t => t.Sampler == "random"));
    }

    [Fact]
    public async Task ANewStudyNeverGoesAmongSomeonesFiles()
    {
        var (model, data) = Setup.Value;
        var options = Options("occupied") with { Trials = 2, Fidelity = NoFineTuning };
        Directory.CreateDirectory(options.OutputDirectory);
        string theirs = Path.Combine(options.OutputDirectory, "report.html");
        File.WriteAllText(theirs, "someone's report");
        var error = await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data));
        Assert.Contains("is not empty and holds no study (it has report.html)", error.Message);
        Assert.Equal("someone's report", File.ReadAllText(theirs));
        Assert.Equal(["report.html"], Directory.GetFileSystemEntries(options.OutputDirectory).Select(Path.GetFileName));

        // A rejected run in a folder that existed removes only what it made.
        File.Delete(theirs);
        var impossible = options with { Constraints = ConstraintSet.Parse(["macs <= 0.001*baseline"]) };
        await Assert.ThrowsAsync<ArgumentException>(() => new PruningSearch(new MLContext(seed: 0), impossible).RunAsync(model, data));
        Assert.True(Directory.Exists(options.OutputDirectory));
        Assert.Empty(Directory.GetFileSystemEntries(options.OutputDirectory));
    }

    [Fact]
    public async Task ASpecialisedSearchPrunesTheModelCutToItsClassesAndResumesFromIt()
    {
        var (model, data) = Setup.Value;
        int[] classes = [7, 1, 5];
        var options = Options("classes", trials: 3) with { Classes = classes, SpecialisationEpochs = 0 };
        var result = await new PruningSearch(new MLContext(seed: 0), options).RunAsync(model, data);

        // The base is the original model with only the subset's logits, in the order asked (checked against the original's outputs).
        var specialised = OnnxModel.Load(Path.Combine(options.OutputDirectory, PruningSearch.SpecialisedBaseFile));
        for (int i = 0; i < 3; i++)
        {
            var image = data.Test!.Image(i).ToArray();
            var all = TestModels.Run(model, image, [1, 1, 28, 28]);
            TestModels.AssertClose(classes.Select(c => all[c]).ToArray(), TestModels.Run(specialised, image, [1, 1, 28, 28]));
        }
        Assert.StartsWith("specialised: classifier cut to 3 classes", result.Baseline.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Fidelity);
        var subsetValidation = data.Validation.Subset(classes);
        Assert.Equal(new ClassifierScorer(new MLContext(seed: 0)).Score(Path.Combine(options.OutputDirectory, PruningSearch.SpecialisedBaseFile), subsetValidation, "validation").Top1,
                     result.Baseline.Value(ObjectiveKind.Accuracy), 6);
        Assert.Equal(classes, result.Definition.ClassSubset);
        Assert.Equal(3, result.Definition.Classes);

        // Exported models tell the subset apart, name its classes in order, and their test accuracy is on the subset's test images.
        Assert.NotEmpty(result.Front);
        foreach (var candidate in result.Front)
        {
            var exported = OnnxModel.Load(candidate.ModelPath);
            Assert.Equal(classes.Select(c => data.Train.ClassNames[c]), ModelInterface.Read(exported)!.ClassNames);
            Assert.Equal(3, TestModels.Run(exported, data.Test!.Image(0).ToArray(), [1, 1, 28, 28]).Length);
            var rescored = new ClassifierScorer(new MLContext(seed: 0)).Score(candidate.ModelPath, data.Test!.Subset(classes), "test");
            Assert.Equal(candidate.TestAccuracy!.Value, rescored.Top1, 6);
        }

        // Resuming with another subset is refused by name; with the same one it prunes the stored base.
        var other = await Assert.ThrowsAsync<ArgumentException>(() =>
            new PruningSearch(new MLContext(seed: 0), options with { Resume = true, Classes = [7, 1] }).RunAsync(model, data));
        Assert.Contains("class subset", other.Message);
        var resumed = await new PruningSearch(new MLContext(seed: 0), options with { Resume = true, Trials = 4 }).RunAsync(model, data);
        Assert.Equal(4, resumed.Trials.Count);
        Assert.Equal(result.Baseline.Value(ObjectiveKind.Accuracy), resumed.Baseline.Value(ObjectiveKind.Accuracy));

        var bad = await Assert.ThrowsAsync<ArgumentException>(() =>
            new PruningSearch(new MLContext(seed: 0), Options("bad-classes") with { Classes = [3, 12] }).RunAsync(model, data));
        Assert.Contains("classes 0..9", bad.Message);
    }

    /// <summary>Reports on the calling thread, so the test sees every report before RunAsync returns.</summary>
    sealed class SynchronousProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
