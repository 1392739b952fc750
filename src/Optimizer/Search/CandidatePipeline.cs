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

/// <summary>
/// The steps every evaluated candidate goes through, one implementation shared by the search and <c>compare</c>:
/// specialise the base model to a class subset, recalibrate BatchNorm, fine-tune, fold BN for deployment, score through
/// ML.NET, and measure on the devices. Each step adds its wall time to a <c>seconds</c> ledger under a fixed name
/// (specialise, recalibrate, fine-tune, score, test, measure), so that where a candidate's time goes reads the same
/// everywhere.
/// </summary>
static class CandidatePipeline
{
    /// <summary>Refuses a class subset that cannot be specialised to, before any work: fewer than two classes, a class the
    /// data does not have, or one listed twice.</summary>
    public static void CheckClasses(IReadOnlyList<int> classes, int available)
    {
        if (classes.Count < 2) throw new ArgumentException($"a class subset needs at least two classes, not {classes.Count}");
        if (classes.FirstOrDefault(c => c < 0 || c >= available, -1) is var bad and >= 0)
            throw new ArgumentException($"the data has classes 0..{available - 1}; the subset asks for class {bad}");
        if (classes.Distinct().Count() != classes.Count) throw new ArgumentException("a class is listed twice in the subset");
    }

    /// <summary>The base model cut to <paramref name="classes"/> (classifier rows in that order) and, with
    /// <paramref name="training"/>, fine-tuned on <paramref name="subsetTrain"/> (<see cref="SubsetData"/>'s training
    /// images): the starting point of a specialised search or comparison.</summary>
    public static ModelProto Specialise(ModelProto model, IReadOnlyList<int> classes, Dataset subsetTrain, TrainingOptions? training, CancellationToken ct)
    {
        var specialised = ModelSurgery.KeepClasses(model, classes);
        return training is null ? specialised : FineTune(specialised, subsetTrain, training, ct);
    }

    /// <summary>The data restricted to <paramref name="classes"/>, relabelled 0..k−1 in the order given.</summary>
    public static SearchData SubsetData(SearchData data, IReadOnlyList<int> classes) =>
        data with
        {
            Train = data.Train.Subset(classes), Validation = data.Validation.Subset(classes), Test = data.Test?.Subset(classes),
            Description = $"{data.Description} [classes {string.Join(", ", classes.Select(c => data.Train.ClassNames[c]))}]",
        };

    /// <summary>BatchNorm statistics recomputed over <paramref name="batches"/> training batches (EagleEye's adaptive BN);
    /// the model unchanged when it has no BatchNorm or no batches are asked for. Guarded like <see cref="FineTune"/>.</summary>
    public static ModelProto Recalibrate(ModelProto model, Dataset train, int batches, int batchSize, int seed, KernelUse? use = null)
    {
        if (batches == 0 || !model.Graph.Node.Any(n => n.OpType == "BatchNormalization")) return model;
        return KernelGuard.Run(model, train, module => Trainer.RecalibrateBatchNorm(module, train, batches, batchSize, seed), use);
    }

    /// <summary>Fine-tunes a copy of the model in TorchSharp on the kernels checked for its convolutions, re-run on ATen
    /// where the result is not finite (<see cref="KernelGuard"/>); cancellation surfaces as <see cref="OperationCanceledException"/>.</summary>
    public static ModelProto FineTune(ModelProto model, Dataset train, TrainingOptions options, CancellationToken ct, KernelUse? use = null) =>
        KernelGuard.Run(model, train, module =>
        {
            var result = Trainer.Train(module, train, validation: null, options, progress: null, ct);
            if (result.Cancelled) throw new OperationCanceledException(ct);
            ct.ThrowIfCancellationRequested();
        }, use);

    /// <summary>Top-1 accuracy of an ONNX file on a split through ML.NET's <c>ApplyOnnxModel</c>, labelled with the split and fidelity.</summary>
    public static ObjectiveValue Score(MLContext mlContext, string path, Dataset data, string split, string fidelity, Dictionary<string, double> seconds)
    {
        var metrics = Timed(seconds, split == "test" ? "test" : "score", () => new ClassifierScorer(mlContext).Score(path, data, split));
        return new ObjectiveValue(ObjectiveKind.Accuracy, metrics.Top1, metrics.Provenance, fidelity);
    }

    /// <summary>Scores a model that is not kept: written to a scratch file for ML.NET, which is deleted afterwards.</summary>
    public static ObjectiveValue ScoreBytes(MLContext mlContext, byte[] deployed, string scratch, Dataset data, string split, string fidelity,
                                            Dictionary<string, double> seconds)
    {
        string path = Path.Combine(scratch, $"{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, deployed);
        try
        {
            return Score(mlContext, path, data, split, fidelity, seconds);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Latency and energy of the deployed bytes (measured or estimated, as the targets say), timed as "measure".</summary>
    public static async Task<List<ObjectiveValue>> MeasureAsync(DeviceTargets devices, ModelProto deployed, byte[] bytes, MeasurementPlan plan,
                                                                bool latency, bool energy, Dictionary<string, double> seconds, CancellationToken ct,
                                                                List<ObjectiveValue>? boards = null)
    {
        var cost = ModelCost.Analyze(deployed);
        var counts = DeviceCounts.Of(deployed, cost);
        var inputShape = cost.InputShape.Skip(1).Select(d => (int)d).ToArray();
        var watch = Stopwatch.StartNew();
        try
        {
            return await DeviceFigures.ObserveAsync(devices, bytes, inputShape, counts, plan, latency, energy, CandidateEvaluator.DeployedFidelity, ct, boards);
        }
        finally
        {
            seconds["measure"] = seconds.GetValueOrDefault("measure") + watch.Elapsed.TotalSeconds;
        }
    }

    /// <summary>Runs a step and adds its wall time to <paramref name="seconds"/>[<paramref name="step"/>].</summary>
    public static T Timed<T>(Dictionary<string, double> seconds, string step, Func<T> work)
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
