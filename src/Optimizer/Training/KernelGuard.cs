using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx.Proto;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>A training left a model that must not be scored, stored or exported: non-finite weights, BatchNorm statistics
/// or outputs, or an accuracy below chance.</summary>
public sealed class BrokenModelException(string message) : Exception(message);

/// <summary>The kernels one candidate's trainings ran on, and what the guard did about them: the trial's kernel record.</summary>
public sealed class KernelUse
{
    readonly Lock gate = new();
    readonly HashSet<(ConvSignature, ConvKernel)> used = [];
    readonly List<string> notes = [];

    /// <summary>Every convolution on the reference (ATen): the re-run after a suspect result.</summary>
    public bool ReferenceOnly { get; init; }

    public bool UsedOneDnn
    {
        get { lock (gate) return used.Any(u => u.Item2 != ConvKernel.Aten); }
    }

    public IReadOnlyList<(ConvSignature Signature, ConvKernel Kernel)> Used
    {
        get { lock (gate) return used.ToList(); }
    }

    public IReadOnlyList<string> Notes
    {
        get { lock (gate) return notes.ToList(); }
    }

    internal void Add(ConvKernelPlan plan)
    {
        lock (gate) used.UnionWith(plan.Used);
    }

    public void Note(string note)
    {
        lock (gate) notes.Add(note);
    }
}

/// <summary>
/// Trains with the per-signature kernels and, when the result is wrong, finds out whether the kernels were at fault. A
/// loss that turns non-finite, or a model left with non-finite weights, statistics or outputs, while any convolution ran
/// on oneDNN, is re-run from the same model with the same seed on ATen, the reference: if ATen stays finite the oneDNN
/// kernels were wrong for those signatures (a fault the check missed): they are marked wrong on this machine, the
/// reference result stands, and the record says so. Only what also fails on ATen is a real divergence.
/// </summary>
public static class KernelGuard
{
    /// <summary>Runs <paramref name="work"/> (a training, a recalibration) on a module of <paramref name="model"/>, checks the
    /// result on a batch of <paramref name="probe"/>, and returns the model written back.</summary>
    /// <exception cref="TrainingDivergedException">The loss diverged on the reference kernels too (or only ran there).</exception>
    /// <exception cref="BrokenModelException">The model is broken on the reference kernels too.</exception>
    public static ModelProto Run(ModelProto model, Dataset probe, Action<OnnxModule> work, KernelUse? use = null)
    {
        Exception first;
        IReadOnlyCollection<(ConvSignature Signature, ConvKernel Kernel)> suspects;
        bool reference = use?.ReferenceOnly ?? false;
        using (var module = new OnnxModule(model) { Kernels = new ConvKernelPlan { ReferenceOnly = reference } })
        {
            try
            {
                work(module);
                Check(module, probe);
                return module.WriteBack();
            }
            catch (Exception e) when (e is TrainingDivergedException or BrokenModelException && module.Kernels.UsedOneDnn)
            {
                first = e;
                suspects = module.Kernels.Used.Where(u => u.Kernel != ConvKernel.Aten).ToList();
            }
            finally
            {
                use?.Add(module.Kernels);
                ConvKernels.Flush(); // the verdicts this training's first steps reached, stored before the next candidate
            }
        }
        using var rerun = new OnnxModule(model) { Kernels = new ConvKernelPlan { ReferenceOnly = true } };
        try
        {
            work(rerun);
            Check(rerun, probe);
        }
        catch (TrainingDivergedException e)
        {
            throw new TrainingDivergedException($"{e.Message}, on oneDNN and again on ATen (the reference kernels): a real divergence");
        }
        catch (BrokenModelException e)
        {
            throw new BrokenModelException($"{e.Message}, on oneDNN and again on ATen (the reference kernels)");
        }
        string note = $"kernel fault: on oneDNN {first.Message}; re-run on ATen (the reference kernels), which was sound: oneDNN marked wrong here " +
                      $"for {suspects.Count} convolution signature{(suspects.Count == 1 ? "" : "s")}";
        ConvKernels.MarkWrong(suspects, note);
        use?.Note(note);
        return rerun.WriteBack();
    }

    /// <summary>Refuses a module whose parameters or BatchNorm statistics hold a non-finite value, or whose outputs on the
    /// first batch of <paramref name="probe"/> do (evaluation mode, the kernels it trained with).</summary>
    public static void Check(OnnxModule module, Dataset probe)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        foreach (var (name, tensor) in module.NamedParameters.Select(p => (p.Key, (Tensor)p.Value)).Concat(module.Statistics.Select(s => (s.Key, s.Value))))
            if (!tensor.isfinite().all().item<bool>())
                throw new BrokenModelException($"{(module.Statistics.ContainsKey(name) ? "BatchNorm statistic" : "weight")} '{name}' holds non-finite values after training");
        if (probe.Count == 0) return;
        module.eval();
        var batch = probe.Batches(Math.Min(64, probe.Count), shuffle: false, seed: 0).First();
        var output = module.forward(Trainer.ToTensors(batch, probe).Images);
        if (!output.isfinite().all().item<bool>())
            throw new BrokenModelException($"the outputs on {batch.Count} training images are not finite after training");
    }

    /// <summary>
    /// Why an accuracy cannot be right, or null, for a split with <paramref name="classCounts"/> images per class: below
    /// what any uninformative classifier scores (the rarest class's share: 1/K where classes are balanced) beyond sampling
    /// noise, which no trained model does; or at or under the majority class's share (what a constant answer scores)
    /// where the model scored above it before this training. The bounds are three binomial standard errors.
    /// </summary>
    public static string? Implausible(double accuracy, IReadOnlyList<int> classCounts, double? before)
    {
        var present = classCounts.Where(c => c > 0).ToList();
        int images = present.Sum();
        if (present.Count < 2) return null;
        double floor = present.Min() / (double)images, ceiling = present.Max() / (double)images;
        double Margin(double p) => 3 * Math.Sqrt(p * (1 - p) / images);
        string chance = present.Min() == present.Max() ? $"{floor:P1} for {present.Count} classes" : $"{floor:P1}, the rarest of {present.Count} classes";
        if (accuracy < floor - Margin(floor)) return $"accuracy {accuracy:P1} is below chance ({chance})";
        if (before is { } b && b > ceiling + Margin(ceiling) && accuracy <= ceiling + Margin(ceiling))
            return $"accuracy {accuracy:P1} is at chance ({ceiling:P1}) after training, {b:P1} before";
        return null;
    }

    /// <summary>Whether <see cref="Implausible"/>'s reason is the one no re-run can excuse.</summary>
    public static bool BelowChance(string reason) => reason.Contains("below chance", StringComparison.Ordinal);

    /// <summary>
    /// Trains a candidate and scores it, and answers for the accuracy: an implausible one (<see cref="Implausible"/>) where
    /// any convolution ran on oneDNN is trained and scored again on ATen, the reference. If ATen's model is plausible the
    /// oneDNN kernels were at fault (marked wrong here, noted on the returned use) and ATen's model stands. A model below
    /// chance on ATen too, or with no oneDNN to blame, is broken (<see cref="BrokenModelException"/>); at chance on both is
    /// a real result, noted. The search and the comparison score through this, so no result below chance is ever stored.
    /// </summary>
    public static async Task<(ModelProto Model, T Score, KernelUse Use)> TrainPlausibly<T>(
        Func<KernelUse, ModelProto> training, Func<ModelProto, Task<T>> score, Func<T, double> accuracy, IReadOnlyList<int> classCounts, double? before)
    {
        var use = new KernelUse();
        var model = training(use);
        var scored = await score(model);
        if (Implausible(accuracy(scored), classCounts, before) is not { } problem) return (model, scored, use);
        if (!use.UsedOneDnn)
        {
            string kernels = use.Used.Count == 0 ? "no convolution trained it" : "trained on ATen (the reference kernels)";
            if (BelowChance(problem)) throw new BrokenModelException($"{problem}, {kernels}");
            use.Note($"{problem}, {kernels}: a real result");
            return (model, scored, use);
        }
        var rerunUse = new KernelUse { ReferenceOnly = true };
        var rerun = training(rerunUse);
        var rescored = await score(rerun);
        foreach (string note in use.Notes) rerunUse.Note(note);
        string? still = Implausible(accuracy(rescored), classCounts, before);
        if (still is not null && BelowChance(still))
            throw new BrokenModelException($"{problem} on oneDNN, and {still} on ATen (the reference kernels)");
        if (still is null)
        {
            var suspects = use.Used.Where(u => u.Kernel != ConvKernel.Aten).ToList();
            string note = $"kernel fault: {problem} on oneDNN; re-run on ATen (the reference kernels): {accuracy(rescored):P1}; oneDNN marked wrong here " +
                          $"for {suspects.Count} convolution signature{(suspects.Count == 1 ? "" : "s")}";
            ConvKernels.MarkWrong(suspects, note);
            rerunUse.Note(note);
        }
        else rerunUse.Note($"{problem} on oneDNN and {still} on ATen (the reference kernels) alike: a real result");
        return (rerun, rescored, rerunUse);
    }
}
