using System.Text.Json;
using System.Text.Json.Serialization;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Search;

using ParetoPrune.Optimizer.Quantization;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>What a comparison prunes and how every point is treated. Every field has a usable default but the output directory.</summary>
public sealed record ComparisonOptions
{
    /// <summary>The run directory: <c>comparison.db</c>, <c>points.csv</c>, plots, <c>report.html</c> (and <c>models/</c>).</summary>
    public required string OutputDirectory { get; init; }

    public IReadOnlyList<PruningMethod> Methods { get; init; } = PruningMethod.Default;

    /// <summary>Fractions in (0, 1): of the channels of every group for structured methods, of the weights for unstructured ones.</summary>
    public IReadOnlyList<double> Amounts { get; init; } = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

    /// <summary>Epochs of fine-tuning after pruning, the same for every method (0: none).</summary>
    public int FineTuneEpochs { get; init; } = 1;

    /// <summary>A cap on the steps of each fine-tuning epoch (a time budget); null runs whole epochs.</summary>
    public int? FineTuneStepsPerEpoch { get; init; }

    /// <summary>Peak learning rate of fine-tuning (SGD, Nesterov, cosine).</summary>
    public double LearningRate { get; init; } = 0.01;

    /// <summary>Images per batch of fine-tuning and BN recalibration.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Training batches over which a structured point's BatchNorm statistics are recomputed before fine-tuning (0: none).</summary>
    public int RecalibrationBatches { get; init; } = 20;

    /// <summary>Batches of 64 training images a data-driven criterion (Taylor, APoZ, LRP) measures.</summary>
    public int ImportanceBatches { get; init; } = 8;

    /// <summary>Structured methods round each group's kept channels to a multiple of this (8 suits the SIMD kernels of
    /// ONNX Runtime on x86 and ARM: other widths can make a pruned model slower than the unpruned one).</summary>
    public int RoundTo { get; init; } = 1;

    /// <summary>
    /// Task specialisation: class indices of the subset (null: all classes only). The base model's classifier is cut to
    /// these classes and fine-tuned on them for <see cref="SpecialisationEpochs"/>, then pruned like the full model, which
    /// is compared too. <see cref="ClassSubset.Resolve"/> turns names into indices.
    /// </summary>
    public IReadOnlyList<int>? Classes { get; init; }

    /// <summary>Epochs of fine-tuning of the specialised base model on the subset.</summary>
    public int SpecialisationEpochs { get; init; } = 1;

    /// <summary>"Equal accuracy": a point keeps the baseline's accuracy when it loses at most this much (0.01 = one point).</summary>
    public double AccuracyTolerance { get; init; } = 0.01;

    /// <summary>Where latency and energy come from; by default both are estimated for a Raspberry Pi 4B.</summary>
    public DeviceTargets Devices { get; init; } = DeviceTargets.Estimated(DeviceProfile.RaspberryPi4B);

    /// <summary>How long each point is timed on a measuring device.</summary>
    public MeasurementPlan Measurement { get; init; } = new() { WarmupRuns = 5, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(2) };

    /// <summary>Keep every point's deployed model (BN folded) under <c>models/</c>.</summary>
    public bool SaveModels { get; init; }

    /// <summary>Continue the comparison already in <see cref="OutputDirectory"/>: stored points are kept, missing ones evaluated.</summary>
    public bool Resume { get; init; }

    /// <summary>Seed of fine-tuning, recalibration and data-driven importance (the same for every point).</summary>
    public int Seed { get; init; }

    /// <summary>CPU threads for training; all cores when null.</summary>
    public int? Threads { get; init; }

    /// <summary>How <c>int8</c> and <c>…+int8</c> methods quantize (calibrated on the training split).</summary>
    public QuantizationOptions Quantization { get; init; } = new();

    internal void Validate()
    {
        if (Methods.Count == 0) throw new ArgumentException("at least one pruning method");
        if (Methods.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1) is { } twice) throw new ArgumentException($"pruning method '{twice.Key}' is listed twice");
        if (Amounts.Count == 0) throw new ArgumentException("at least one amount");
        foreach (double amount in Amounts)
            if (!(amount > 0 && amount < 1)) throw new ArgumentException($"amounts are fractions in (0, 1); got {amount}");
        if (Amounts.Distinct().Count() != Amounts.Count) throw new ArgumentException("an amount is listed twice");
        if (FineTuneEpochs < 0 || SpecialisationEpochs < 0) throw new ArgumentException("fine-tuning epochs cannot be negative");
        if (FineTuneStepsPerEpoch is < 1) throw new ArgumentException("fine-tuning steps per epoch must be at least 1");
        if (BatchSize < 1 || ImportanceBatches < 1) throw new ArgumentException("the batch size and importance batches must be at least 1");
        if (RecalibrationBatches < 0) throw new ArgumentException("recalibration batches cannot be negative");
        if (RoundTo < 1) throw new ArgumentException($"channel counts are rounded to a multiple of at least 1; got {RoundTo}");
        if (!(LearningRate > 0)) throw new ArgumentException($"the learning rate must be positive ({LearningRate})");
        if (!(AccuracyTolerance >= 0)) throw new ArgumentException($"the accuracy tolerance cannot be negative ({AccuracyTolerance})");
        if (Classes is { } classes && (classes.Count < 2 || classes.Distinct().Count() != classes.Count))
            throw new ArgumentException("a class subset lists at least two classes, each once (one class leaves nothing to classify)");
        Measurement.Validate();
        if (Methods.Any(m => m.Quantized)) Quantization.Validate();
    }
}

/// <summary>What every stored point was evaluated with: a resumed comparison must match (methods, amounts and classes may change).</summary>
/// <param name="ModelSha256">Hash of the base model: resuming against another model is refused.</param>
/// <param name="Devices">Where latency and energy come from, in words.</param>
public sealed record ComparisonDefinition(
    string ModelPath, string ModelSha256, string Data, int FineTuneEpochs, int? FineTuneStepsPerEpoch, double LearningRate, int BatchSize,
    int RecalibrationBatches, int ImportanceBatches, int SpecialisationEpochs, int Seed, string Devices, MeasurementPlan Measurement,
    double AccuracyTolerance, int RoundTo = 1, string? Quantization = null)
{
    /// <summary>Differences that forbid resuming.</summary>
    public IReadOnlyList<string> Differences(ComparisonDefinition other)
    {
        var problems = new List<string>();
        void Compare<T>(string what, T stored, T requested)
        {
            string a = JsonSerializer.Serialize(stored, ComparisonStore.JsonOptions), b = JsonSerializer.Serialize(requested, ComparisonStore.JsonOptions);
            if (a != b) problems.Add($"{what}: the comparison has {a}, this run asks for {b}");
        }
        Compare("model", ModelSha256, other.ModelSha256);
        Compare("data", Data, other.Data);
        Compare("fine-tuning epochs", FineTuneEpochs, other.FineTuneEpochs);
        Compare("fine-tuning steps per epoch", FineTuneStepsPerEpoch, other.FineTuneStepsPerEpoch);
        Compare("learning rate", LearningRate, other.LearningRate);
        Compare("batch size", BatchSize, other.BatchSize);
        Compare("recalibration batches", RecalibrationBatches, other.RecalibrationBatches);
        Compare("importance batches", ImportanceBatches, other.ImportanceBatches);
        Compare("channel rounding", RoundTo, other.RoundTo);
        Compare("specialisation epochs", SpecialisationEpochs, other.SpecialisationEpochs);
        Compare("seed", Seed, other.Seed);
        Compare("devices", Devices, other.Devices);
        Compare("measurement", Measurement, other.Measurement);
        if (Quantization is not null && other.Quantization is not null) Compare("quantization", Quantization, other.Quantization);
        return problems;
    }
}

/// <summary>One evaluated model of a comparison: a method at an amount on a task, or a task's baseline.</summary>
/// <param name="Task"><see cref="ComparisonTasks.All"/> or a class subset's key (<see cref="ComparisonTasks.Subset"/>).</param>
/// <param name="Method">The method's name, or <see cref="ComparisonTasks.Baseline"/> for the unpruned model.</param>
/// <param name="Family">Null for a baseline.</param>
/// <param name="Amount">Channel fraction (structured) or sparsity (unstructured); 0 for a baseline.</param>
/// <param name="Values">Validation accuracy, MACs and parameters (as counted on the graph: a dense count), dense and compressed
/// bytes of the deployed file (BN folded), latency and energy as far as the devices give them; each with its provenance.</param>
/// <param name="TestAccuracy">Accuracy on the test split, when there is one.</param>
/// <param name="NonZeroParams">Parameters that are not zero (computed): where unstructured sparsity shows.</param>
/// <param name="WeightSparsity">Share of zeros in the Conv, Gemm and MatMul weights (computed).</param>
/// <param name="Seconds">Wall time by step (prune, recalibrate, fine-tune, score, measure).</param>
/// <param name="Error">Why the point failed; null when it did not.</param>
/// <param name="ModelPath">The deployed model, relative to the run directory, when models are saved.</param>
public sealed record ComparisonPoint(
    string Task, string Method, PruningFamily? Family, double Amount, IReadOnlyList<ObjectiveValue> Values, ObjectiveValue? TestAccuracy,
    long? NonZeroParams, double? WeightSparsity, IReadOnlyDictionary<string, double> Seconds, string? Error, string? ModelPath)
{
    [JsonIgnore] public bool Failed => Error is not null;

    [JsonIgnore] public bool IsBaseline => Method == ComparisonTasks.Baseline;

    /// <summary>The value of an objective, or null when the point has none (failed, or no device gave it).</summary>
    public double? Value(ObjectiveKind kind) => Values.FirstOrDefault(v => v.Kind == kind)?.Value;
}

/// <summary>Names of the tasks a comparison runs: all classes, or a class subset.</summary>
public static class ComparisonTasks
{
    public const string All = "all";

    /// <summary>The method name of a task's unpruned model.</summary>
    public const string Baseline = "baseline";

    public static string Subset(IReadOnlyList<int> classes) => "classes:" + string.Join(",", classes);

    /// <summary>A task as a folder or file name: "all", "classes-0-2-5".</summary>
    public static string FileName(string task) => task.Replace(':', '-').Replace(',', '-');

    /// <summary>The classes of a subset task; null for <see cref="All"/>.</summary>
    public static IReadOnlyList<int>? ClassesOf(string task) =>
        task == All ? null : task.StartsWith("classes:", StringComparison.Ordinal)
            ? task["classes:".Length..].Split(',').Select(c => int.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray()
            : throw new ArgumentException($"'{task}' is not a comparison task");
}

/// <summary>Progress of a comparison, reported after every point.</summary>
/// <param name="Completed">Points done (stored ones and failed ones included).</param>
/// <param name="Total">Points the run asks for (baselines included).</param>
/// <param name="Remaining">Estimated time left, from the mean duration of this run's points.</param>
/// <param name="Point">The point just finished; null for other messages.</param>
public sealed record ComparisonProgress(string Task, int Completed, int Total, int Failed, TimeSpan Elapsed, TimeSpan? Remaining, string Message,
                                        ComparisonPoint? Point);

/// <summary>Class subsets by index or name.</summary>
public static class ClassSubset
{
    /// <summary>
    /// Indices of the listed classes, in order: each entry an index ("2") or a class name, matched without case
    /// ("pullover").
    /// </summary>
    /// <exception cref="ArgumentException">An unknown name or index, or a class listed twice; the message lists the classes.</exception>
    public static int[] Resolve(IEnumerable<string> classes, IReadOnlyList<string> classNames)
    {
        string Known() => string.Join(", ", classNames.Select((n, i) => $"{i} {n}"));
        var result = new List<int>();
        foreach (string entry in classes.Select(c => c.Trim()).Where(c => c.Length > 0))
        {
            int index = int.TryParse(entry, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int i) ? i
                : Enumerable.Range(0, classNames.Count).FirstOrDefault(k => string.Equals(classNames[k], entry, StringComparison.OrdinalIgnoreCase), -1);
            if (index < 0 || index >= classNames.Count) throw new ArgumentException($"unknown class '{entry}'; the classes are {Known()}");
            if (result.Contains(index)) throw new ArgumentException($"class '{entry}' is listed twice");
            result.Add(index);
        }
        if (result.Count == 0) throw new ArgumentException($"no class given; the classes are {Known()}");
        return [.. result];
    }
}
