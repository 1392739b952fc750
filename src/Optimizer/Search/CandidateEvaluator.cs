using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Search;

/// <summary>
/// Where latency and energy come from. A measured device (this host, or a Pi through its agent) or, for what no device
/// measures, a profile's estimate, labelled as such. The demo estimates the Pi's energy and measures latency here.
/// </summary>
public sealed record DeviceTargets(IDevice? LatencyDevice, IDevice? EnergyDevice, DeviceProfile? Profile)
{
    public static DeviceTargets Estimated(DeviceProfile profile) => new(null, null, profile);

    public string Description =>
        $"latency: {(LatencyDevice is { } l ? $"measured on {l.Name}" : Profile is { } p ? $"estimated by profile {p.Name}" : "none")}; " +
        $"energy: {(EnergyDevice is { } e ? $"measured on {e.Name}" : Profile is { } q ? $"estimated by profile {q.Name}" : "none")}";
}

/// <summary>
/// Turns a configuration into objective values at a stage: prune, recalibrate or fine-tune in TorchSharp, write back to
/// ONNX, score on the validation split through ML.NET's <c>ApplyOnnxModel</c>, count, and measure the BN-folded model
/// (the form that ships) on the device. Thread-safe: each call works on its own module and files.
/// </summary>
sealed class CandidateEvaluator
{
    readonly SearchSpace space;
    readonly ModelProto baseModel;
    readonly Dataset train, validation;
    readonly Dataset? test;
    readonly FidelityOptions fidelity;
    readonly DeviceTargets devices;
    readonly MeasurementPlan plan;
    readonly MLContext mlContext;
    readonly IReadOnlySet<ObjectiveKind> kinds;
    readonly string runDirectory, scratch;
    readonly int deployedLayers;
    readonly int screeningThreads, fineTuneThreads;
    readonly Distillation? distillation; // one for the whole search: it keeps the teacher's outputs for every candidate

    readonly TrainingImages? trainedOn;

    /// <summary>Quantize each exported model to INT8 too (<see cref="StageResult.Int8"/>); null for float models only.</summary>
    public QuantizationOptions? Quantize { get; init; }

    public CandidateEvaluator(SearchSpace space, Dataset train, Dataset validation, Dataset? test, FidelityOptions fidelity, DeviceTargets devices,
                              MeasurementPlan plan, MLContext mlContext, IReadOnlySet<ObjectiveKind> kinds, string runDirectory, int screeningThreads, int fineTuneThreads,
                              TrainingImages? trainedOn = null)
    {
        this.trainedOn = trainedOn;
        this.space = space;
        baseModel = space.Groups.Model;
        (this.train, this.validation, this.test) = (train, validation, test);
        (this.fidelity, this.devices, this.plan, this.mlContext, this.kinds, this.runDirectory) = (fidelity, devices, plan, mlContext, kinds, runDirectory);
        (this.screeningThreads, this.fineTuneThreads) = (screeningThreads, fineTuneThreads);
        distillation = fidelity.Distill ? new Distillation(baseModel) : null;
        scratch = Path.Combine(runDirectory, ".scratch");
        Directory.CreateDirectory(scratch);
        deployedLayers = ModelSurgery.FoldBatchNorm(baseModel).Graph.Node.Count;
        foreach (var kind in kinds)
        {
            if (kind == ObjectiveKind.Latency && devices.LatencyDevice is null && devices.Profile is null)
                throw new ArgumentException("latency is asked for but no device measures it and no profile estimates it");
            if (kind == ObjectiveKind.Energy && devices.EnergyDevice is null && devices.Profile?.ActiveWatts is null)
                throw new ArgumentException("energy is asked for but no device with a meter measures it and no profile with power figures estimates it");
        }
    }

    /// <summary>Where exported models go (<c>models/</c>), relative paths being stored with their trials.</summary>
    public string RunDirectory => runDirectory;

    /// <summary>The objectives known exactly from a configuration.</summary>
    public IReadOnlySet<ObjectiveKind> Predicted => new HashSet<ObjectiveKind>(kinds.Where(k => k is ObjectiveKind.Macs or ObjectiveKind.Params or ObjectiveKind.DenseBytes
        || (k == ObjectiveKind.Latency && devices.LatencyDevice is null) || (k == ObjectiveKind.Energy && devices.EnergyDevice is null)));

    /// <summary>Exact values of <see cref="Predicted"/> for a configuration.</summary>
    public IReadOnlyDictionary<ObjectiveKind, double> Predict(IReadOnlyList<int> kept)
    {
        return Counted(kept).ToDictionary(v => v.Kind, v => v.Value);
    }

    List<ObjectiveValue> Counted(IReadOnlyList<int> kept)
    {
        var (macs, parameters) = space.Costs(kept);
        var values = new List<ObjectiveValue>();
        void Add(ObjectiveKind kind, double value, Provenance provenance, string fidelityText = Fidelities.Computed)
        {
            if (kinds.Contains(kind)) values.Add(new(kind, value, provenance, fidelityText));
        }
        Add(ObjectiveKind.Macs, macs, Provenance.Computed);
        Add(ObjectiveKind.Params, parameters, Provenance.Computed);
        if (kinds.Contains(ObjectiveKind.DenseBytes)) Add(ObjectiveKind.DenseBytes, space.PredictBytes(kept), Provenance.Computed);
        if (devices.Profile is { } profile)
            values.AddRange(DeviceFigures.Estimated(profile, new ModelCounts(macs, parameters * 4, deployedLayers),
                                                    devices.LatencyDevice is null && kinds.Contains(ObjectiveKind.Latency),
                                                    devices.EnergyDevice is null && kinds.Contains(ObjectiveKind.Energy), DeployedFidelity));
        return values;
    }

    /// <summary>The unpruned model, as trained.</summary>
    /// <param name="baselineFidelity">How the base model was obtained ("as trained", or how it was specialised).</param>
    public async Task<StageResult> BaselineAsync(string baselineFidelity, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var values = Counted(space.Full);
        var boards = new List<ObjectiveValue>();
        values.AddRange(await ObserveAsync(baseModel, baselineFidelity, seconds, measureDevice: true, ct, boards));
        return new StageResult(SearchStage.Screening, values, seconds) { Boards = boards.Count > 0 ? boards : null };
    }

    /// <summary>Screening: prune, recalibrate BN, fine-tune <see cref="FidelityOptions.ScreeningSteps"/> steps, score, measure.</summary>
    public async Task<StageResult> ScreenAsync(int number, int[] kept, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        string fidelityText = fidelity.FidelityOf(SearchStage.Screening);
        var (model, accuracy, use) = await TrainAndScore(use =>
        {
            var model = Prepare(kept, seconds, use);
            return fidelity.ScreeningSteps == 0 ? model
                : CandidatePipeline.Timed(seconds, "fine-tune", () => CandidatePipeline.FineTune(model, train, Training(fidelity.ScreeningSteps, 1, number, null, screeningThreads), ct, use));
        }, fidelityText, seconds, before: null); // the pruned model's accuracy before this first training is not known (the base model's is not it)
        var values = Counted(kept);
        var boards = new List<ObjectiveValue>();
        values.AddRange(await ObserveAsync(model, fidelityText, seconds, measureDevice: true, ct, boards, accuracy));
        return new StageResult(SearchStage.Screening, values, seconds) { Boards = boards.Count > 0 ? boards : null, KernelNotes = Notes(use) };
    }

    /// <summary>
    /// A sensitivity probe: the validation accuracy of a configuration pruned and its batch statistics recalibrated, not
    /// trained (or briefly fine-tuned), on ATen's kernels (the reference: a probe is not worth a kernel check).
    /// </summary>
    /// <param name="steps">Fine-tuning steps before scoring (0: none), as a screening's, from seed 0.</param>
    public double Probe(int[] kept, int steps = 0)
    {
        var seconds = new Dictionary<string, double>();
        var use = new KernelUse { ReferenceOnly = true };
        var model = Prepare(kept, seconds, use);
        if (steps > 0) model = CandidatePipeline.FineTune(model, train, Training(steps, 1, 0, null, screeningThreads), CancellationToken.None, use);
        return ScoreValidation(model, steps > 0 ? $"pruned, recalibrated, {steps} steps" : "pruned, recalibrated, not trained", seconds).Value;
    }

    /// <summary>Promotion or final stage: prune, recalibrate, fine-tune, score (device figures carried over from screening:
    /// training does not change the architecture, so they cannot change).</summary>
    public async Task<StageResult> FineTuneAsync(int number, int[] kept, SearchStage stage, StageResult screening, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var options = stage == SearchStage.Final
            ? Training(fidelity.FinalStepsPerEpoch, fidelity.FinalEpochs, number, distillation, fineTuneThreads)
            : Training(fidelity.PromotionSteps, 1, number, null, fineTuneThreads);
        string fidelityText = fidelity.FidelityOf(stage);
        double? before = screening.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Value; // fallen to chance since screening?
        var (model, accuracy, use) = await TrainAndScore(use =>
        {
            var model = Prepare(kept, seconds, use);
            return CandidatePipeline.Timed(seconds, "fine-tune", () => CandidatePipeline.FineTune(model, train, options, ct, use));
        }, fidelityText, seconds, before);
        var values = screening.Values.Where(v => !SearchProblem.IsFidelityDependent(v.Kind)).ToList();
        values.AddRange(await ObserveAsync(model, fidelityText, seconds, measureDevice: false, ct, accuracy: accuracy));
        if (stage != SearchStage.Final) return new StageResult(stage, values, seconds) { Boards = screening.Boards, KernelNotes = Notes(use) };

        var deployed = ModelSurgery.FoldBatchNorm(model);
        string relative = Path.Combine("models", $"trial-{number}.onnx");
        string path = Path.Combine(runDirectory, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        OnnxModel.SetMetadata(deployed, "paretoprune.trial", number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        OnnxModel.SetMetadata(deployed, "paretoprune.fidelity", fidelityText);
        if (trainedOn is not null) TrainingImages.Append(deployed, trainedOn); // the next search on it keeps to images it has not seen
        OnnxModel.Save(deployed, path);
        var testAccuracy = test is null ? null : CandidatePipeline.Score(mlContext, path, test, "test", fidelityText, seconds);
        var result = new StageResult(stage, values, seconds, testAccuracy, relative) { Boards = screening.Boards, KernelNotes = Notes(use) };
        if (Quantize is null) return result;
        try
        {
            return result with { Int8 = await Int8VariantAsync(number, deployed, result, fidelityText, ct) };
        }
        catch (Exception e) when (e is not OperationCanceledException && !Storage.IsFull(e))
        {
            return result with { Int8Error = $"{e.GetType().Name}: {e.Message}" }; // the float model is done: keep it
        }
    }

    /// <summary>
    /// The exported model quantized to INT8 and observed as a model of its own: accuracy re-scored, sizes of its file,
    /// latency and energy measured (or estimated at the profile's integer rate). MACs, parameters and peak activation
    /// bytes are the float model's: quantization changes none of them (the peak counts the graph's float tensors, an upper
    /// bound on what a runtime holds in 8 bits).
    /// </summary>
    async Task<StageResult> Int8VariantAsync(int number, ModelProto deployed, StageResult final, string fidelityText, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var quantized = CandidatePipeline.Timed(seconds, "quantize", () => Int8Quantizer.Quantize(deployed, train, Quantize! with { Seed = number }));
        string fidelity = $"{fidelityText}; {quantized.Report.Description}";
        string relative = Path.Combine("models", $"trial-{number}-int8.onnx");
        OnnxModel.Save(quantized.Model, Path.Combine(runDirectory, relative));
        byte[] bytes = OnnxModel.ToBytes(quantized.Model);
        var values = new List<ObjectiveValue>();
        foreach (var value in final.Values)
            switch (value.Kind)
            {
                case ObjectiveKind.Accuracy:
                    values.Add(CandidatePipeline.ScoreBytes(mlContext, bytes, scratch, validation, "validation", fidelity, seconds));
                    break;
                case ObjectiveKind.DenseBytes:
                    values.Add(value with { Value = bytes.Length });
                    break;
                case ObjectiveKind.CompressedBytes:
                    values.Add(value with { Value = ModelSize.Compressed(bytes) });
                    break;
                case ObjectiveKind.Latency or ObjectiveKind.Energy:
                    break; // below, both at once
                default:
                    values.Add(value);
                    break;
            }
        bool latency = final.Values.Any(v => v.Kind == ObjectiveKind.Latency), energy = final.Values.Any(v => v.Kind == ObjectiveKind.Energy);
        if (latency || energy) values.AddRange(await CandidatePipeline.MeasureAsync(devices, quantized.Model, bytes, plan, latency, energy, seconds, ct));
        var testAccuracy = test is null ? null : CandidatePipeline.ScoreBytes(mlContext, bytes, scratch, test, "test", fidelity, seconds);
        return new StageResult(SearchStage.Final, values, seconds, testAccuracy, relative);
    }

    /// <summary>Removes the scratch folder of candidate files once nothing is in flight.</summary>
    public void Cleanup()
    {
        if (Directory.Exists(scratch) && !Directory.EnumerateFileSystemEntries(scratch).Any()) Directory.Delete(scratch);
    }

    /// <summary>Device figures depend on the architecture only, not on training: the same at every stage.</summary>
    public const string DeployedFidelity = "deployed architecture (BN folded)";

    /// <summary>The pruned, recalibrated starting point of every stage (each stage starts from it, so stages are independent).</summary>
    ModelProto Prepare(int[] kept, Dictionary<string, double> seconds, KernelUse use)
    {
        var model = CandidatePipeline.Timed(seconds, "prune", () => space.Prune(kept));
        return CandidatePipeline.Timed(seconds, "recalibrate",
            () => CandidatePipeline.Recalibrate(model, train, fidelity.RecalibrationBatches, fidelity.BatchSize, seed: 0, use));
    }

    /// <summary>Trains a candidate (<paramref name="training"/>: prepare and the stage's fine-tuning) and scores it on the
    /// validation split, re-run on ATen where the accuracy is implausible (<see cref="KernelGuard.TrainPlausibly{T}"/>).</summary>
    async Task<(ModelProto Model, ObjectiveValue? Accuracy, KernelUse Use)> TrainAndScore(Func<KernelUse, ModelProto> training, string fidelityText,
                                                                                          Dictionary<string, double> seconds, double? before)
    {
        if (!kinds.Contains(ObjectiveKind.Accuracy))
        {
            var use = new KernelUse();
            return (training(use), null, use);
        }
        var (model, accuracy, checkedUse) = await KernelGuard.TrainPlausibly(training, m => Task.FromResult(ScoreValidation(m, fidelityText, seconds)),
                                                                             a => a.Value, validation.ClassCounts(), before);
        return (model, accuracy, checkedUse);
    }

    ObjectiveValue ScoreValidation(ModelProto model, string fidelityText, Dictionary<string, double> seconds) =>
        CandidatePipeline.ScoreBytes(mlContext, OnnxModel.ToBytes(ModelSurgery.FoldBatchNorm(model)), scratch, validation, "validation", fidelityText, seconds);

    static IReadOnlyList<string>? Notes(KernelUse use) => use.Notes is { Count: > 0 } notes ? notes : null;

    TrainingOptions Training(int? steps, int epochs, int seed, Distillation? distillation, int threads) => new()
    {
        Epochs = epochs,
        MaxStepsPerEpoch = steps,
        BatchSize = fidelity.BatchSize,
        LearningRate = fidelity.LearningRate,
        Schedule = ScheduleKind.Cosine,
        Seed = seed,
        Threads = threads,
        Distillation = distillation,
    };

    /// <summary>Accuracy on the validation split (ML.NET), and what the deployed file costs on the measuring devices
    /// (profile estimates are exact from the configuration: <see cref="Counted"/>).</summary>
    async Task<List<ObjectiveValue>> ObserveAsync(ModelProto model, string fidelityText, Dictionary<string, double> seconds,
                                                  bool measureDevice, CancellationToken ct, List<ObjectiveValue>? boards = null,
                                                  ObjectiveValue? accuracy = null)
    {
        var values = new List<ObjectiveValue>();
        var deployed = ModelSurgery.FoldBatchNorm(model);
        byte[] bytes = OnnxModel.ToBytes(deployed);
        if (kinds.Contains(ObjectiveKind.Accuracy))
            values.Add(accuracy ?? CandidatePipeline.ScoreBytes(mlContext, bytes, scratch, validation, "validation", fidelityText, seconds));
        if (!measureDevice) return values;
        if (kinds.Contains(ObjectiveKind.CompressedBytes))
            values.Add(new(ObjectiveKind.CompressedBytes, ModelSize.Compressed(bytes), Provenance.Computed, Fidelities.Computed));
        if (kinds.Contains(ObjectiveKind.PeakActivationBytes))
            values.Add(new(ObjectiveKind.PeakActivationBytes, ModelCost.Analyze(deployed).PeakActivationBytes, Provenance.Computed, Fidelities.Computed));
        bool latency = kinds.Contains(ObjectiveKind.Latency) && devices.LatencyDevice is not null;
        bool energy = kinds.Contains(ObjectiveKind.Energy) && devices.EnergyDevice is not null;
        if (latency || energy)
            values.AddRange(await CandidatePipeline.MeasureAsync(devices, deployed, bytes, plan, latency, energy, seconds, ct, boards));
        return values;
    }
}

/// <summary>A device could not give a figure the study needs; the trial fails with this reason and the search goes on.</summary>
public sealed class DeviceMeasurementException(string message) : Exception(message);
