using System.Diagnostics;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Search;

/// <summary>How much work each stage of the fidelity ladder puts into a candidate.</summary>
public sealed record FidelityOptions
{
    /// <summary>Training batches over which a screened candidate's BatchNorm statistics are recomputed.</summary>
    public int RecalibrationBatches { get; init; } = 20;

    /// <summary>Images per batch for recalibration and fine-tuning.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Screened candidates fine-tuned briefly: the best by (constrained front, crowding distance). 0 skips the stage.</summary>
    public int PromoteCount { get; init; } = 6;

    /// <summary>Fine-tuning steps of a promoted candidate.</summary>
    public int PromotionSteps { get; init; } = 150;

    /// <summary>Promoted candidates on the front fine-tuned with the final budget and exported (at most this many).</summary>
    public int FinalCount { get; init; } = 4;

    /// <summary>Epochs of the final fine-tuning.</summary>
    public int FinalEpochs { get; init; } = 1;

    /// <summary>A cap on the steps of each final epoch (a time budget); null runs whole epochs.</summary>
    public int? FinalStepsPerEpoch { get; init; }

    /// <summary>Distil from the unpruned model during the final fine-tuning.</summary>
    public bool Distill { get; init; }

    /// <summary>Peak learning rate of fine-tuning (SGD, Nesterov, cosine).</summary>
    public double LearningRate { get; init; } = 0.01;

    internal void Validate()
    {
        if (RecalibrationBatches < 0) throw new ArgumentException($"recalibration batches cannot be negative ({RecalibrationBatches})");
        if (BatchSize < 1) throw new ArgumentException($"the batch size must be at least 1 ({BatchSize})");
        if (PromoteCount < 0 || FinalCount < 0) throw new ArgumentException("promotion and final counts cannot be negative");
        if (PromotionSteps < 1 || FinalEpochs < 1) throw new ArgumentException("promotion needs at least one step and the final stage one epoch");
        if (FinalStepsPerEpoch is < 1) throw new ArgumentException("final steps per epoch must be at least 1");
        if (!(LearningRate > 0)) throw new ArgumentException($"the learning rate must be positive ({LearningRate})");
    }

    public string FidelityOf(SearchStage stage) => stage switch
    {
        SearchStage.Screening => RecalibrationBatches > 0 ? $"{Fidelities.BnRecalibrated} ({RecalibrationBatches} batches)" : Fidelities.NoRetraining,
        SearchStage.Promotion => $"fine-tuned {PromotionSteps} steps",
        _ => (FinalStepsPerEpoch is { } s ? $"fine-tuned {FinalEpochs}×{s} steps" : Fidelities.FineTuned(FinalEpochs)) + (Distill ? ", distilled" : ""),
    };
}

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
    readonly int[] inputShape;
    readonly int deployedLayers;
    readonly int? threads;

    public CandidateEvaluator(SearchSpace space, Dataset train, Dataset validation, Dataset? test, FidelityOptions fidelity, DeviceTargets devices,
                              MeasurementPlan plan, MLContext mlContext, IReadOnlySet<ObjectiveKind> kinds, string runDirectory, int? threads)
    {
        this.space = space;
        baseModel = space.Groups.Model;
        (this.train, this.validation, this.test) = (train, validation, test);
        (this.fidelity, this.devices, this.plan, this.mlContext, this.kinds, this.runDirectory, this.threads) =
            (fidelity, devices, plan, mlContext, kinds, runDirectory, threads);
        scratch = Path.Combine(runDirectory, ".scratch");
        Directory.CreateDirectory(scratch);
        var cost = ModelCost.Analyze(baseModel);
        inputShape = cost.InputShape.Skip(1).Select(d => (int)d).ToArray();
        deployedLayers = ModelSurgery.FoldBatchNorm(baseModel).Graph.Node.Count;
        foreach (var kind in kinds)
        {
            if (kind == ObjectiveKind.Latency && devices.LatencyDevice is null && devices.Profile is null)
                throw new ArgumentException("latency is asked for but no device measures it and no profile estimates it");
            if (kind == ObjectiveKind.Energy && devices.EnergyDevice is null && devices.Profile?.ActiveWatts is null)
                throw new ArgumentException("energy is asked for but no device with a meter measures it and no profile with power figures estimates it");
        }
    }

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
        {
            double ms = profile.EstimateLatencyMs(new ModelCounts(macs, parameters * 4, deployedLayers));
            var estimated = Provenance.Estimated(profile.Name, profile.Device);
            if (devices.LatencyDevice is null) Add(ObjectiveKind.Latency, ms, estimated, DeployedFidelity);
            if (devices.EnergyDevice is null && profile.ActiveWatts is { } watts) Add(ObjectiveKind.Energy, ms * watts, estimated, DeployedFidelity); // ms × W = mJ
        }
        return values;
    }

    /// <summary>The unpruned model, as trained.</summary>
    public async Task<StageResult> BaselineAsync(CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var values = Counted(space.Full);
        values.AddRange(await ObserveAsync(baseModel, "baseline", "as trained", seconds, measureDevice: true, ct));
        return new StageResult(SearchStage.Screening, values, seconds);
    }

    /// <summary>Screening: prune, recalibrate BN, score, measure.</summary>
    public async Task<StageResult> ScreenAsync(int number, int[] kept, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var model = Timed(seconds, "prune", () => space.Prune(kept));
        model = Timed(seconds, "recalibrate", () => Recalibrate(model));
        var values = Counted(kept);
        values.AddRange(await ObserveAsync(model, $"trial-{number}", fidelity.FidelityOf(SearchStage.Screening), seconds, measureDevice: true, ct));
        return new StageResult(SearchStage.Screening, values, seconds);
    }

    /// <summary>Promotion or final stage: prune, recalibrate, fine-tune, score (device figures carried over from screening:
    /// training does not change the architecture, so they cannot change).</summary>
    public async Task<StageResult> FineTuneAsync(int number, int[] kept, SearchStage stage, StageResult screening, CancellationToken ct)
    {
        var seconds = new Dictionary<string, double>();
        var model = Timed(seconds, "prune", () => space.Prune(kept));
        model = Timed(seconds, "recalibrate", () => Recalibrate(model));
        var options = new TrainingOptions
        {
            Epochs = stage == SearchStage.Final ? fidelity.FinalEpochs : 1,
            MaxStepsPerEpoch = stage == SearchStage.Final ? fidelity.FinalStepsPerEpoch : fidelity.PromotionSteps,
            BatchSize = fidelity.BatchSize,
            LearningRate = fidelity.LearningRate,
            Schedule = ScheduleKind.Cosine,
            Seed = number,
            Threads = threads,
            Distillation = stage == SearchStage.Final && fidelity.Distill ? new Distillation(baseModel) : null,
        };
        model = Timed(seconds, "fine-tune", () =>
        {
            using var module = new OnnxModule(model);
            Trainer.Train(module, train, validation: null, options, progress: null, ct);
            ct.ThrowIfCancellationRequested();
            return module.WriteBack();
        });
        string fidelityText = fidelity.FidelityOf(stage);
        var values = screening.Values.Where(v => !SearchProblem.IsFidelityDependent(v.Kind)).ToList();
        var observed = await ObserveAsync(model, $"trial-{number}-{stage.ToString().ToLowerInvariant()}", fidelityText, seconds, measureDevice: false, ct);
        values.AddRange(observed);
        if (stage != SearchStage.Final) return new StageResult(stage, values, seconds);

        var deployed = ModelSurgery.FoldBatchNorm(model);
        string relative = Path.Combine("models", $"trial-{number}.onnx");
        string path = Path.Combine(runDirectory, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        OnnxModel.SetMetadata(deployed, "paretoprune.trial", number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        OnnxModel.SetMetadata(deployed, "paretoprune.fidelity", fidelityText);
        OnnxModel.Save(deployed, path);
        ObjectiveValue? testAccuracy = null;
        if (test is not null)
        {
            var metrics = Timed(seconds, "test", () => new ClassifierScorer(mlContext).Score(path, test, "test"));
            testAccuracy = new ObjectiveValue(ObjectiveKind.Accuracy, metrics.Top1, metrics.Provenance, fidelityText);
        }
        return new StageResult(stage, values, seconds, testAccuracy, relative);
    }

    /// <summary>Removes the scratch folder of candidate files once nothing is in flight.</summary>
    public void Cleanup()
    {
        if (Directory.Exists(scratch) && !Directory.EnumerateFileSystemEntries(scratch).Any()) Directory.Delete(scratch);
    }

    /// <summary>Device figures depend on the architecture only, not on training: the same at every stage.</summary>
    public const string DeployedFidelity = "deployed architecture (BN folded)";

    ModelProto Recalibrate(ModelProto model)
    {
        if (fidelity.RecalibrationBatches == 0 || !model.Graph.Node.Any(n => n.OpType == "BatchNormalization")) return model;
        using var module = new OnnxModule(model);
        Trainer.RecalibrateBatchNorm(module, train, fidelity.RecalibrationBatches, fidelity.BatchSize, seed: 0);
        return module.WriteBack();
    }

    /// <summary>Accuracy on the validation split (ML.NET), and what the deployed file costs on the devices.</summary>
    async Task<List<ObjectiveValue>> ObserveAsync(ModelProto model, string name, string fidelityText, Dictionary<string, double> seconds,
                                                  bool measureDevice, CancellationToken ct)
    {
        var values = new List<ObjectiveValue>();
        var deployed = ModelSurgery.FoldBatchNorm(model);
        byte[] bytes = OnnxModel.ToBytes(deployed);
        if (kinds.Contains(ObjectiveKind.Accuracy))
        {
            string path = Path.Combine(scratch, name + ".onnx");
            File.WriteAllBytes(path, bytes);
            try
            {
                var metrics = Timed(seconds, "score", () => new ClassifierScorer(mlContext).Score(path, validation, "validation"));
                values.Add(new ObjectiveValue(ObjectiveKind.Accuracy, metrics.Top1, metrics.Provenance, fidelityText));
            }
            finally
            {
                File.Delete(path);
            }
        }
        if (!measureDevice) return values;
        if (kinds.Contains(ObjectiveKind.CompressedBytes))
            values.Add(new(ObjectiveKind.CompressedBytes, ModelSize.Compressed(bytes), Provenance.Computed, Fidelities.Computed));
        if (kinds.Contains(ObjectiveKind.PeakActivationBytes))
            values.Add(new(ObjectiveKind.PeakActivationBytes, ModelCost.Analyze(deployed).PeakActivationBytes, Provenance.Computed, Fidelities.Computed));

        bool latency = kinds.Contains(ObjectiveKind.Latency) && devices.LatencyDevice is not null;
        bool energy = kinds.Contains(ObjectiveKind.Energy) && devices.EnergyDevice is not null;
        Measurement? latencyMeasurement = null;
        if (latency)
        {
            var watch = Stopwatch.StartNew();
            latencyMeasurement = await devices.LatencyDevice!.MeasureAsync(bytes, inputShape, plan, ct);
            seconds["measure"] = watch.Elapsed.TotalSeconds;
            values.Add(new(ObjectiveKind.Latency, latencyMeasurement.Latency.MedianMs, ToProvenance(latencyMeasurement.Provenance), DeployedFidelity));
        }
        if (energy)
        {
            var measurement = ReferenceEquals(devices.EnergyDevice, devices.LatencyDevice) && latencyMeasurement is not null
                ? latencyMeasurement
                : await devices.EnergyDevice!.MeasureAsync(bytes, inputShape, plan, ct);
            if (measurement.Energy is not { } e)
                throw new DeviceMeasurementException($"{devices.EnergyDevice!.Name} gave no energy: {measurement.EnergyUnavailableReason}");
            values.Add(new(ObjectiveKind.Energy, e.JoulesPerInference * 1000, ToProvenance(measurement.Provenance), DeployedFidelity));
        }
        return values;
    }

    static Provenance ToProvenance(DeviceProvenance device) => device.Kind == DeviceProvenanceKind.Measured
        ? Provenance.Measured(device.Device, device.Meter, device.RuntimeDescription)
        : Provenance.Estimated(device.Profile ?? device.Device, device.Device, device.RuntimeDescription);

    static T Timed<T>(Dictionary<string, double> seconds, string step, Func<T> work)
    {
        var watch = Stopwatch.StartNew();
        try
        {
            return work();
        }
        finally
        {
            seconds[step] = seconds.GetValueOrDefault(step) + watch.Elapsed.TotalSeconds;
        }
    }
}

/// <summary>A device could not give a figure the study needs; the trial fails with this reason and the search goes on.</summary>
public sealed class DeviceMeasurementException(string message) : Exception(message);
