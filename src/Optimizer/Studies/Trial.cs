using System.Text.Json.Serialization;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;

namespace ParetoPrune.Optimizer.Studies;

[JsonConverter(typeof(JsonStringEnumConverter<TrialState>))]
public enum TrialState { Running, Complete, Failed }

/// <summary>What one stage found for a trial.</summary>
/// <param name="Values">Every objective the study tracks, at this stage's fidelity (computed ones are the same at every stage).</param>
/// <param name="Seconds">Wall time of the stage, by step (prune, recalibrate, fine-tune, score, measure).</param>
/// <param name="TestAccuracy">Final stage only: accuracy on the test split, which the search never looks at.</param>
/// <param name="ModelPath">Final stage only: the exported model, relative to the run directory.</param>
public sealed record StageResult(
    SearchStage Stage, IReadOnlyList<ObjectiveValue> Values, IReadOnlyDictionary<string, double> Seconds,
    ObjectiveValue? TestAccuracy = null, string? ModelPath = null)
{
    /// <summary>Where several boards measured the model (<c>--per-board</c>): each board's latency and energy, labelled with the
    /// board; <see cref="Values"/> holds their mean. Null otherwise.</summary>
    public IReadOnlyList<ObjectiveValue>? Boards { get; init; }

    /// <summary>Final stage of a study that quantizes (<see cref="StudyDefinition.Quantize"/>): the same model quantized to
    /// INT8, scored and measured on its own (its <see cref="ModelPath"/> is <c>models/trial-N-int8.onnx</c>). Null otherwise.</summary>
    public StageResult? Int8 { get; init; }

    /// <summary>Why a study that quantizes has no INT8 variant of this final model (the float one stands); null otherwise.</summary>
    public string? Int8Error { get; init; }

    /// <summary>What the kernel guard did in this stage (a oneDNN fault found and re-run on ATen, or an at-chance accuracy
    /// confirmed on ATen); null when nothing happened.</summary>
    public IReadOnlyList<string>? KernelNotes { get; init; }

    /// <summary>The exported models of a final stage: the float one, and its INT8 variant where there is one.</summary>
    [JsonIgnore]
    public IEnumerable<string> ModelPaths => new[] { ModelPath, Int8?.ModelPath }.OfType<string>();

    public double Value(ObjectiveKind kind) => Values.FirstOrDefault(v => v.Kind == kind)?.Value
        ?? throw new KeyNotFoundException($"no {kind.Name()} value at stage {Stage}");

    public IReadOnlyDictionary<ObjectiveKind, double> ToDictionary() => ObjectiveValue.ToDictionary(Values);

    public double TotalSeconds => Seconds.Values.Sum();
}

/// <summary>One candidate configuration and everything learned about it. Written to the study store when it changes.</summary>
/// <param name="Number">0-based, in the order trials were proposed.</param>
/// <param name="Sampler">The sampler that proposed it ("bo", "random", "uniform", "nsga2").</param>
/// <param name="Kept">Kept channels per search dimension.</param>
/// <param name="Error">Why it failed (a failed trial is kept: the sampler learns to avoid it and the report shows it).</param>
public sealed record Trial(
    int Number, string Sampler, int[] Kept, TrialState State, IReadOnlyList<StageResult> Stages, string? Error, DateTimeOffset Started)
{
    public StageResult? At(SearchStage stage) => Stages.FirstOrDefault(s => s.Stage == stage);

    /// <summary>The result of the furthest stage reached.</summary>
    public StageResult? Latest => Stages.Count == 0 ? null : Stages.MaxBy(s => s.Stage);

    public Trial With(StageResult result) =>
        this with { Stages = [.. Stages.Where(s => s.Stage != result.Stage), result], State = TrialState.Complete, Error = null };
}
