using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>
/// The trade-off study of pruning methods, ML.NET style: <c>var result = await new MethodComparison(mlContext, options).RunAsync(model, data);</c>.
/// Every method prunes the base model at every amount; each point is (BN-recalibrated if structured,) fine-tuned the same
/// way, scored on the validation (and test) split through ML.NET, BN-folded, counted and measured, and stored as soon as
/// it is done, so a stopped run resumes where it stopped. With a class subset the base model is first specialised to it
/// and the same methods × amounts run on the subset too.
/// </summary>
public sealed class MethodComparison
{
    readonly MLContext mlContext;
    readonly ComparisonOptions options;

    public MethodComparison(MLContext mlContext, ComparisonOptions options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
    }

    public const string StoreFile = "comparison.db";

    /// <summary>Runs (or resumes) the comparison on a model file.</summary>
    /// <param name="stop">Finish the point in flight, store it and return (Ctrl-C): the comparison can be resumed.</param>
    /// <param name="abort">Abandon the point in flight (a second Ctrl-C): it is evaluated again on resume.</param>
    public Task<ComparisonResult> RunAsync(string modelPath, SearchData data, IProgress<ComparisonProgress>? progress = null,
                                           CancellationToken stop = default, CancellationToken abort = default) =>
        RunAsync(OnnxModel.Load(modelPath), Path.GetFullPath(modelPath), Hash(File.ReadAllBytes(modelPath)), data, progress, stop, abort);

    /// <summary>Runs (or resumes) the comparison on a model in memory.</summary>
    public Task<ComparisonResult> RunAsync(ModelProto model, SearchData data, IProgress<ComparisonProgress>? progress = null,
                                           CancellationToken stop = default, CancellationToken abort = default) =>
        RunAsync(model, "(in memory)", Hash(OnnxModel.ToBytes(model)), data, progress, stop, abort);

    static string Hash(byte[] bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    async Task<ComparisonResult> RunAsync(ModelProto model, string modelPath, string hash, SearchData data, IProgress<ComparisonProgress>? reporter,
                                          CancellationToken stop, CancellationToken abort)
    {
        using var log = new ProgressLog<ComparisonProgress>(mlContext, "ParetoPrune.Compare", reporter, p =>
            $"{p.Task} {p.Completed}/{p.Total}" + (p.Failed > 0 ? $", {p.Failed} failed" : "") + $", {p.Elapsed:hh\\:mm\\:ss}" +
            (p.Message.Length > 0 ? $": {p.Message}" : ""));
        IProgress<ComparisonProgress> progress = log;
        if (options.Classes is { } classes) CandidatePipeline.CheckClasses(classes, data.Train.ClassNames.Count);
        string directory = Path.GetFullPath(options.OutputDirectory);
        string storePath = Path.Combine(directory, StoreFile);
        // The validation split is part of the data: a point scored on other images is not comparable.
        string dataText = $"{data.Description}; validation: {data.Validation.Source} ({data.Validation.Count} images)";
        var definition = new ComparisonDefinition(modelPath, hash, dataText, options.FineTuneEpochs, options.FineTuneStepsPerEpoch,
            options.LearningRate, options.BatchSize, options.RecalibrationBatches, options.ImportanceBatches, options.SpecialisationEpochs,
            options.Seed, options.Devices.Description, options.Measurement, options.AccuracyTolerance, options.RoundTo,
            options.Methods.Any(m => m.Quantized) ? options.Quantization.Describe(Math.Min(options.Quantization.CalibrationImages, data.Train.Count)) : null);
        var store = Resumable.CreateOrOpen(options.Resume, storePath, () => ComparisonStore.Create(storePath, definition), ComparisonStore.OpenForWriting,
                                           s => s.Definition.Differences(definition));
        // The tolerance only changes how stored points are summarised: a resumed comparison may change it. Quantization
        // settings are set by the first run with an INT8 method, and fixed from then on.
        if (options.Resume)
            store.Definition = store.Definition with { AccuracyTolerance = options.AccuracyTolerance, Quantization = store.Definition.Quantization ?? definition.Quantization };

        using (store)
        {
            store.Status = StudyStatus.Running;
            var run = new ComparisonRun(store, options, mlContext, directory, progress);
            try
            {
                bool completed = await run.RunAsync(model, data, stop, abort);
                store.Status = completed ? StudyStatus.Finished : StudyStatus.Stopped;
                var result = ComparisonResult.Load(store, directory);
                ComparisonReport.Write(result);
                return result;
            }
            catch (Exception e) when (Storage.IsFull(e) && e is not StoreFullException)
            {
                throw Storage.Full(directory, "the comparison keeps every point stored before it: free some space and resume it", e);
            }
        }
    }
}

/// <summary>One run over a store: the tasks in order, each a baseline then methods × amounts, skipping stored points.</summary>
sealed class ComparisonRun(ComparisonStore store, ComparisonOptions options, MLContext mlContext, string directory,
                           IProgress<ComparisonProgress>? progress)
{
    readonly Dictionary<(string Task, string Method, string Amount), ComparisonPoint> stored =
        store.Points().ToDictionary(p => (p.Task, p.Method, ComparisonStore.AmountKey(p.Amount)));
    readonly Stopwatch watch = Stopwatch.StartNew();
    readonly string scratch = Path.Combine(directory, ".scratch");
    int total, completed, failed, fresh;
    TimeSpan freshTime;

    /// <summary>True when every point is done; false when stopped early.</summary>
    public async Task<bool> RunAsync(ModelProto model, SearchData data, CancellationToken stop, CancellationToken abort)
    {
        var tasks = new List<string> { ComparisonTasks.All };
        if (options.Classes is { } classes) tasks.Add(ComparisonTasks.Subset(classes));
        var wanted = tasks.SelectMany(Keys).ToList();
        total = wanted.Count;
        completed = wanted.Count(stored.ContainsKey);
        failed = wanted.Count(k => stored.TryGetValue(k, out var p) && p.Failed);
        Directory.CreateDirectory(scratch);
        try
        {
            foreach (string task in tasks)
            {
                if (stop.IsCancellationRequested) return false;
                var (baseModel, taskData, baselineFidelity) = task == ComparisonTasks.All
                    ? (model, data, "as trained")
                    : Specialise(task, model, data, abort);
                if (!await RunTaskAsync(task, baseModel, taskData, baselineFidelity, stop, abort)) return false;
            }
            return true;
        }
        finally
        {
            if (Directory.Exists(scratch) && !Directory.EnumerateFileSystemEntries(scratch).Any()) Directory.Delete(scratch);
        }
    }

    /// <summary>The amounts a method is evaluated at: INT8 alone has one point, at amount 0 (it prunes nothing).</summary>
    IReadOnlyList<double> AmountsOf(PruningMethod method) => method.Prunes ? options.Amounts : [0.0];

    IEnumerable<(string, string, string)> Keys(string task) =>
        options.Methods.SelectMany(m => AmountsOf(m).Select(a => (task, m.Name, ComparisonStore.AmountKey(a))))
               .Prepend((task, ComparisonTasks.Baseline, ComparisonStore.AmountKey(0)));

    /// <summary>The base model cut to the subset's classes and fine-tuned on them (stored, so a resumed run prunes the same model).</summary>
    (ModelProto Model, SearchData Data, string Fidelity) Specialise(string task, ModelProto model, SearchData data, CancellationToken abort)
    {
        var classes = ComparisonTasks.ClassesOf(task)!;
        var subset = CandidatePipeline.SubsetData(data, classes);
        string fidelity = $"specialised: classifier cut to {classes.Count} classes" +
                          (options.SpecialisationEpochs > 0 ? $", fine-tuned {FineTuneText(options.SpecialisationEpochs)} on them" : "");
        if (store.Base(task) is { } bytes) return (OnnxModel.Parse(bytes, $"specialised base of {task}"), subset, fidelity);

        Report(task, $"specialising the base model to classes {string.Join(", ", classes)}", null);
        var specialised = CandidatePipeline.Specialise(model, classes, subset.Train,
            options.SpecialisationEpochs > 0 ? Training(options.SpecialisationEpochs, []) : null, abort);
        store.SaveBase(task, OnnxModel.ToBytes(specialised));
        OnnxModel.Save(specialised, Path.Combine(directory, "models", $"specialised-{ComparisonTasks.FileName(task)}.onnx"));
        return (specialised, subset, fidelity);
    }

    async Task<bool> RunTaskAsync(string task, ModelProto model, SearchData data, string baselineFidelity, CancellationToken stop, CancellationToken abort)
    {
        var baselineKey = (task, ComparisonTasks.Baseline, ComparisonStore.AmountKey(0));
        if (!stored.ContainsKey(baselineKey))
        {
            Report(task, "evaluating the unpruned model", null);
            var timer = Stopwatch.StartNew();
            var seconds = new Dictionary<string, double>();
            var values = await ObserveAsync(model, data, task, ComparisonTasks.Baseline, 0, baselineFidelity, seconds, abort);
            // A baseline that cannot be evaluated leaves nothing to compare with: the error stops the run.
            Finish(values.With(task, ComparisonTasks.Baseline, null, 0, seconds), timer);
        }
        foreach (var method in options.Methods)
        {
            var missing = AmountsOf(method).Where(a => !stored.ContainsKey((task, method.Name, ComparisonStore.AmountKey(a)))).ToList();
            if (missing.Count == 0) continue;
            PruningMethod.Pruner? pruner = null; // channel scores are computed on the first amount and shared by the others
            foreach (double amount in missing)
            {
                if (stop.IsCancellationRequested) return false;
                var timer = Stopwatch.StartNew();
                var seconds = new Dictionary<string, double>();
                ComparisonPoint point;
                try
                {
                    pruner ??= method.Prepare(model, data.Train, options.ImportanceBatches, options.Seed, options.RoundTo);
                    point = await EvaluateAsync(task, method, amount, pruner, data, seconds, abort);
                }
                catch (Exception e) when (e is not OperationCanceledException && !Storage.IsFull(e))
                {
                    point = new ComparisonPoint(task, method.Name, method.Family, amount, [], null, null, null, seconds, $"{e.GetType().Name}: {e.Message}", null);
                }
                Finish(point, timer);
            }
        }
        return !stop.IsCancellationRequested;
    }

    async Task<ComparisonPoint> EvaluateAsync(string task, PruningMethod method, double amount, PruningMethod.Pruner pruner, SearchData data,
                                              Dictionary<string, double> seconds, CancellationToken abort)
    {
        var pruned = Timed(seconds, "prune", () => pruner.Prune(amount));
        bool recalibrate = method.Family == PruningFamily.Structured && options.RecalibrationBatches > 0
                           && pruned.Model.Graph.Node.Any(n => n.OpType == "BatchNormalization");
        bool fineTune = method.Prunes && options.FineTuneEpochs > 0; // INT8 alone quantizes the model as trained
        ModelProto Train(KernelUse use)
        {
            var model = pruned.Model;
            if (recalibrate)
                model = Timed(seconds, "recalibrate", () => CandidatePipeline.Recalibrate(model, data.Train, options.RecalibrationBatches, options.BatchSize, options.Seed, use));
            if (fineTune)
                model = Timed(seconds, "fine-tune", () => CandidatePipeline.FineTune(model, data.Train, Training(options.FineTuneEpochs, pruned.SparseWeights), abort, use));
            return model;
        }
        var parts = new List<string>();
        if (recalibrate) parts.Add($"{Fidelities.BnRecalibrated} ({options.RecalibrationBatches} batches)");
        if (fineTune) parts.Add("fine-tuned " + FineTuneText(options.FineTuneEpochs) + (pruned.SparseWeights.Count > 0 ? ", zeros kept" : ""));
        if (parts.Count == 0) parts.Add(method.Prunes ? Fidelities.NoRetraining : "as trained");
        string fidelity = string.Join(", ", parts);
        // A point may fall to chance (a deep cut without retraining), never below it: that is a broken model, re-run on
        // ATen where oneDNN trained it (KernelGuard.TrainPlausibly), else failed with its reason.
        var (_, values, _) = await KernelGuard.TrainPlausibly(Train, model => ObserveAsync(model, data, task, method.Name, amount, fidelity, seconds, abort, method.Quantized),
                                                              o => o.Values.Single(v => v.Kind == ObjectiveKind.Accuracy).Value,
                                                              data.Validation.ClassCounts(), before: null);
        return values.With(task, method.Name, method.Family, amount, seconds);
    }

    string FineTuneText(int epochs) => options.FineTuneStepsPerEpoch is { } steps
        ? $"{epochs}×{steps} steps"
        : epochs == 1 ? "1 epoch" : $"{epochs} epochs";

    TrainingOptions Training(int epochs, IReadOnlyList<string> sparseWeights) => new()
    {
        Epochs = epochs,
        MaxStepsPerEpoch = options.FineTuneStepsPerEpoch,
        BatchSize = options.BatchSize,
        LearningRate = options.LearningRate,
        Schedule = ScheduleKind.Cosine,
        Seed = options.Seed,
        Threads = options.Threads,
        SparseWeights = sparseWeights,
    };

    /// <summary>What a point's figures are before it is placed: everything but its coordinates.</summary>
    sealed record Observation(IReadOnlyList<ObjectiveValue> Values, ObjectiveValue? TestAccuracy, long NonZeroParams, double WeightSparsity, string? ModelPath)
    {
        public ComparisonPoint With(string task, string method, PruningFamily? family, double amount, IReadOnlyDictionary<string, double> seconds) =>
            new(task, method, family, amount, Values, TestAccuracy, NonZeroParams, WeightSparsity, seconds, null, ModelPath);
    }

    /// <summary>
    /// Counts on the model as trained (MACs and parameters of the graph, non-zero parameters, weight sparsity), then the
    /// deployed form (BN folded): its file sizes, accuracy through ML.NET on validation and test, latency and energy.
    /// </summary>
    async Task<Observation> ObserveAsync(ModelProto model, SearchData data, string task, string method, double amount, string fidelity,
                                         Dictionary<string, double> seconds, CancellationToken abort, bool quantize = false)
    {
        var cost = ModelCost.Analyze(model);
        var layers = UnstructuredPruner.Measure(model);
        double sparsity = layers.Sum(l => l.Elements) is var elements and > 0 ? (double)layers.Sum(l => l.Zeros) / elements : 0;
        var deployed = ModelSurgery.FoldBatchNorm(model);
        if (quantize)
        {
            var quantized = Timed(seconds, "quantize", () => Int8Quantizer.Quantize(deployed, data.Train, options.Quantization with { Seed = options.Seed }));
            (deployed, fidelity) = (quantized.Model, $"{fidelity}; {quantized.Report.Description}");
        }
        byte[] bytes = OnnxModel.ToBytes(deployed);
        var values = new List<ObjectiveValue>
        {
            new(ObjectiveKind.Macs, cost.Macs, Provenance.Computed, Fidelities.Computed),
            new(ObjectiveKind.Params, cost.Params, Provenance.Computed, Fidelities.Computed),
            new(ObjectiveKind.DenseBytes, bytes.Length, Provenance.Computed, Fidelities.Computed),
            new(ObjectiveKind.CompressedBytes, ModelSize.Compressed(bytes), Provenance.Computed, Fidelities.Computed),
        };

        string? relative = options.SaveModels ? Path.Combine("models", ComparisonTasks.FileName(task), $"{method}-{ComparisonStore.AmountKey(amount)}.onnx") : null;
        string path = relative is not null ? Path.Combine(directory, relative) : Path.Combine(scratch, $"{Guid.NewGuid():N}.onnx");
        OnnxModel.Save(deployed, path);
        ObjectiveValue? test = null;
        try
        {
            values.Insert(0, CandidatePipeline.Score(mlContext, path, data.Validation, "validation", fidelity, seconds));
            if (data.Test is { } testData) test = CandidatePipeline.Score(mlContext, path, testData, "test", fidelity, seconds);
        }
        finally
        {
            if (relative is null) File.Delete(path);
        }
        values.AddRange(await CandidatePipeline.MeasureAsync(options.Devices, deployed, bytes, options.Measurement, latency: true, energy: true, seconds, abort));
        return new Observation(values, test, NonZeroParams(model), sparsity, relative);
    }

    /// <summary>Parameters (by <see cref="OpRegistry.LearnableInputs"/>, each tensor once) that are not zero.</summary>
    internal static long NonZeroParams(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        var counted = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var node in graph.Nodes)
            foreach (int slot in OpRegistry.LearnableInputs(node))
            {
                if (slot >= node.Input.Count || !graph.IsInitializer(node.Input[slot]) || !counted.Add(node.Input[slot])) continue;
                var tensor = graph.Constant(node.Input[slot])!;
                if (tensor.DataType == (int)TensorProto.Types.DataType.Float) total += OnnxTensors.ReadFloats(tensor).LongCount(v => v != 0);
            }
        return total;
    }

    void Finish(ComparisonPoint point, Stopwatch timer)
    {
        store.Save(point);
        stored[(point.Task, point.Method, ComparisonStore.AmountKey(point.Amount))] = point;
        completed++;
        fresh++;
        freshTime += timer.Elapsed;
        if (point.Failed) failed++;
        string what = point.IsBaseline ? "baseline" : $"{point.Method} {point.Amount.ToString("0.###", CultureInfo.InvariantCulture)}";
        string outcome = point.Failed ? "failed: " + point.Error
            : string.Join(", ", point.Values.Where(v => v.Kind is ObjectiveKind.Accuracy or ObjectiveKind.Macs or ObjectiveKind.CompressedBytes or ObjectiveKind.Energy)
                                     .Select(v => $"{v.Kind.Name()} {v.Kind.Format(v.Value)}"));
        Report(point.Task, $"{what}: {outcome} ({point.Seconds.Values.Sum():0.0} s)", point);
    }

    void Report(string task, string message, ComparisonPoint? point)
    {
        TimeSpan? remaining = fresh > 0 ? freshTime / fresh * Math.Max(0, total - completed) : null;
        progress?.Report(new ComparisonProgress(task, completed, total, failed, watch.Elapsed, remaining, message, point));
    }

    static T Timed<T>(Dictionary<string, double> seconds, string step, Func<T> work) => CandidatePipeline.Timed(seconds, step, work);
}
