using System.Diagnostics;
using System.Runtime.CompilerServices;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

public enum OptimizerKind { Sgd, AdamW }

public enum ScheduleKind { Cosine, Step, Constant }

/// <summary>Knowledge distillation from a teacher (usually the unpruned model): KL on temperature-softened outputs.</summary>
/// <param name="Weight">Share of the loss given to the KL term; the rest is cross-entropy on the labels.</param>
public sealed record Distillation(ModelProto Teacher, double Temperature = 4.0, double Weight = 0.7)
{
    /// <summary>
    /// The teacher's outputs per training image, kept across trainings that share this instance: the teacher is fixed
    /// and in evaluation mode, so without augmentation an image's outputs never change, and its forward pass was 30–60 %
    /// of a distilled step (bench/RESULTS.md). A search shares one instance across all its candidates.
    /// </summary>
    internal ConditionalWeakTable<Dataset, TeacherOutputs> Outputs { get; } = new();
}

/// <summary>One teacher's outputs for the images of one dataset (a copy made with <c>with { Teacher = … }</c> shares
/// the table, so each entry says whose outputs it holds).</summary>
internal sealed record TeacherOutputs(ModelProto Teacher, float[]?[] Values);

/// <summary>How to train. Defaults suit fine-tuning a CIFAR-size CNN on a CPU.</summary>
public sealed record TrainingOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Sgd;
    public double LearningRate { get; init; } = 0.05;
    public double Momentum { get; init; } = 0.9;
    public bool Nesterov { get; init; } = true;
    public double WeightDecay { get; init; } = 5e-4;
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Cosine;
    /// <summary>Epochs of linear warm-up from 0 to the learning rate (fractions allowed).</summary>
    public double WarmupEpochs { get; init; }
    /// <summary>Step schedule: multiply the rate by <see cref="StepGamma"/> every <see cref="StepEpochs"/> epochs.</summary>
    public int StepEpochs { get; init; } = 30;
    public double StepGamma { get; init; } = 0.1;
    public double LabelSmoothing { get; init; }
    public Augmentation? Augmentation { get; init; }
    public int Seed { get; init; }
    /// <summary>Stop when validation accuracy has not improved for this many epochs; the best epoch's weights are kept.</summary>
    public int? EarlyStoppingPatience { get; init; }
    /// <summary>A budget: at most this many steps per epoch (the rest of the epoch's data is skipped).</summary>
    public int? MaxStepsPerEpoch { get; init; }
    /// <summary>Intra-op threads; all cores when null.</summary>
    public int? Threads { get; init; }
    public Distillation? Distillation { get; init; }
    /// <summary>
    /// Parameters (ONNX initializer names) whose zero entries are pruned weights (unstructured pruning): they are set back
    /// to zero after every optimiser step, so that fine-tuning keeps the sparsity the pruning paid for.
    /// </summary>
    public IReadOnlyList<string>? SparseWeights { get; init; }

    /// <summary>Forces the layout (benchmarks compare both); null: <see cref="TorchRuntime.ChannelsLastFor"/> decides by the model.</summary>
    internal bool? ChannelsLast { get; init; }
}

public sealed record TrainingProgress(int Epoch, int Epochs, int Step, int StepsPerEpoch, double Loss, double Accuracy, double ImagesPerSecond);

public sealed record EpochResult(int Epoch, double TrainLoss, double TrainAccuracy, double? ValidationAccuracy, double? ValidationLoss,
                                 double Seconds, double ImagesPerSecond, double LearningRate);

/// <summary>Where a training's steps spent their time, in seconds summed over all steps: what is not the student's forward
/// and backward pass (and the teacher's, when distilling) is overhead.</summary>
/// <param name="Data">Drawing, augmenting and copying batches into tensors.</param>
/// <param name="Forward">The student's forward pass and the loss.</param>
/// <param name="Teacher">The teacher's forward pass (distillation only).</param>
/// <param name="Optimizer">Zeroing gradients, the optimiser step, re-applying pruned zeros.</param>
/// <param name="Bookkeeping">Reading the loss and accuracy back, progress reports.</param>
public sealed record StepTimes(double Data, double Forward, double Teacher, double Backward, double Optimizer, double Bookkeeping)
{
    public double Total => Data + Forward + Teacher + Backward + Optimizer + Bookkeeping;

    public override string ToString() =>
        $"data {Share(Data)}, forward {Share(Forward)}, teacher {Share(Teacher)}, backward {Share(Backward)}, optimiser {Share(Optimizer)}, bookkeeping {Share(Bookkeeping)}";

    string Share(double seconds) => Total > 0 ? $"{100 * seconds / Total:0.0} %" : "0 %";
}

public sealed record TrainingResult(IReadOnlyList<EpochResult> Epochs, int BestEpoch, double? BestValidationAccuracy, bool Cancelled, TimeSpan Duration,
                                    StepTimes Steps);

public sealed record Evaluation(double Accuracy, double Loss, int Count);

/// <summary>Training, fine-tuning, distillation, evaluation and BatchNorm recalibration of an <see cref="OnnxModule"/>.</summary>
public static class Trainer
{
    public static TrainingResult Train(OnnxModule module, Dataset train, Dataset? validation, TrainingOptions options,
                                       IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (options.Epochs < 1 || options.BatchSize < 1) throw new ArgumentException("epochs and batch size must be positive");
        torch.set_num_threads(options.Threads ?? Environment.ProcessorCount);
        module.Random.manual_seed(options.Seed); // the module's own generator: not libtorch's global one, which parallel trials share
        using var teacher = options.Distillation is { } d ? new OnnxModule(d.Teacher) : null;
        teacher?.eval();
        var parameters = module.parameters().ToList();
        using var optimizer = ParameterUpdate.For(parameters, options);

        var zeroMasks = ZeroMasks(module, options.SparseWeights);
        int stepsPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        if (options.MaxStepsPerEpoch is { } max) stepsPerEpoch = Math.Min(stepsPerEpoch, max);
        long totalSteps = (long)stepsPerEpoch * options.Epochs;
        module.ChannelsLast = options.ChannelsLast ?? TorchRuntime.ChannelsLastFor(module.Source);
        var history = new List<EpochResult>();
        Dictionary<string, Tensor>? best = null;
        double? bestAccuracy = null;
        int bestEpoch = 0, sinceBest = 0;
        var started = Stopwatch.StartNew();
        bool cancelled = false;
        // Step phases, timed with the CPU synchronous (libtorch's CPU kernels return when done).
        long data = 0, forward = 0, teaching = 0, backward = 0, stepping = 0, bookkeeping = 0;
        long mark = Stopwatch.GetTimestamp();
        long Lap()
        {
            long now = Stopwatch.GetTimestamp(), elapsed = now - mark;
            mark = now;
            return elapsed;
        }
        try
        {
            for (int epoch = 1; epoch <= options.Epochs && !cancelled; epoch++)
            {
                module.train();
                var watch = Stopwatch.StartNew();
                double lossSum = 0;
                long correct = 0, seen = 0;
                int step = 0;
                double rate = 0;
                mark = Stopwatch.GetTimestamp();
                foreach (var batch in train.Batches(options.BatchSize, shuffle: true, options.Seed * 1000 + epoch, options.Augmentation))
                {
                    if (step == stepsPerEpoch) break;
                    if (cancellation.IsCancellationRequested) { cancelled = true; break; }
                    rate = LearningRate(options, (epoch - 1) * (long)stepsPerEpoch + step, stepsPerEpoch, totalSteps);
                    optimizer.LearningRate = rate;

                    using var scope = NewDisposeScope();
                    var (x, y) = ToTensors(batch, train);
                    data += Lap();
                    var teacherLogits = teacher is null ? null
                        : options.Augmentation is null ? CachedTeacherLogits(teacher, options.Distillation!, train, batch, x)
                        : TeacherLogits(teacher, x);
                    teaching += Lap();
                    optimizer.ZeroGrad();
                    stepping += Lap();
                    var logits = module.forward(x);
                    var loss = Loss(logits, y, teacherLogits, options);
                    forward += Lap();
                    loss.backward();
                    backward += Lap();
                    optimizer.Step();
                    KeepZeros(zeroMasks);
                    stepping += Lap();

                    double value = loss.item<float>();
                    if (!double.IsFinite(value))
                        throw new TrainingDivergedException($"the loss became {value} at epoch {epoch}, step {step + 1} (learning rate {rate:G3})");
                    lossSum += value * batch.Count;
                    correct += logits.argmax(1).eq(y).sum().item<long>();
                    seen += batch.Count;
                    step++;
                    progress?.Report(new TrainingProgress(epoch, options.Epochs, step, stepsPerEpoch, lossSum / seen, (double)correct / seen,
                                                          seen / watch.Elapsed.TotalSeconds));
                    bookkeeping += Lap();
                }
                if (seen == 0) break;
                double seconds = watch.Elapsed.TotalSeconds;
                var validationResult = validation is null ? null : Evaluate(module, validation, Math.Max(options.BatchSize, 256));
                history.Add(new EpochResult(epoch, lossSum / seen, (double)correct / seen, validationResult?.Accuracy, validationResult?.Loss,
                                            seconds, seen / seconds, rate));
                if (validationResult is not null)
                {
                    if (bestAccuracy is null || validationResult.Accuracy > bestAccuracy)
                    {
                        bestAccuracy = validationResult.Accuracy;
                        bestEpoch = epoch;
                        sinceBest = 0;
                        if (options.EarlyStoppingPatience is not null)
                        {
                            DisposeAll(best);
                            best = module.Snapshot();
                        }
                    }
                    else if (options.EarlyStoppingPatience is { } patience && ++sinceBest >= patience) break;
                }
                else bestEpoch = epoch;
            }
            if (best is not null && history.Count > 0 && bestEpoch != history[^1].Epoch) module.Restore(best);
        }
        finally
        {
            DisposeAll(best);
            foreach (var (_, mask) in zeroMasks) mask.Dispose();
            module.eval();
        }
        double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
        return new TrainingResult(history, bestEpoch, bestAccuracy, cancelled, started.Elapsed,
                                  new StepTimes(Seconds(data), Seconds(forward), Seconds(teaching), Seconds(backward), Seconds(stepping), Seconds(bookkeeping)));
    }

    /// <summary>Top-1 accuracy and mean cross-entropy in evaluation mode.</summary>
    public static Evaluation Evaluate(OnnxModule module, Dataset data, int batchSize = 256)
    {
        module.eval();
        using var noGrad = no_grad();
        double lossSum = 0;
        long correct = 0;
        foreach (var batch in data.Batches(batchSize, shuffle: false, seed: 0))
        {
            using var scope = NewDisposeScope();
            var (x, y) = ToTensors(batch, data);
            var logits = module.forward(x);
            lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
            correct += logits.argmax(1).eq(y).sum().item<long>();
        }
        return new Evaluation(data.Count == 0 ? 0 : (double)correct / data.Count, data.Count == 0 ? 0 : lossSum / data.Count, data.Count);
    }

    /// <summary>
    /// Recomputes every BatchNorm's running statistics over <paramref name="batches"/> training batches, without gradient
    /// steps (EagleEye's adaptive BN): after pruning, the old statistics describe channels that no longer add up the same
    /// way, and fresh ones rank candidates almost as well as fine-tuning does, for the cost of a few forward passes.
    /// </summary>
    public static void RecalibrateBatchNorm(OnnxModule module, Dataset data, int batches = 50, int batchSize = 128, int seed = 0)
    {
        using var noGrad = no_grad();
        // Dropout off; BN normalises with batch statistics while RecalibrationStep is set, and batch k enters the running
        // statistics with weight 1/(k+1): after K batches they are the plain average, whatever they were before.
        module.eval();
        int step = 0;
        try
        {
            foreach (var batch in data.Batches(batchSize, shuffle: true, seed))
            {
                if (step == batches) break;
                using var scope = NewDisposeScope();
                module.RecalibrationStep = step++;
                module.forward(ToTensors(batch, data).Images);
            }
        }
        finally
        {
            module.RecalibrationStep = -1;
        }
    }

    /// <summary>The teacher's outputs, in inference mode: no autograd records at all (no_grad still tracks versions).</summary>
    static Tensor TeacherLogits(OnnxModule teacher, Tensor images)
    {
        using var inference = inference_mode();
        return teacher.forward(images);
    }

    /// <summary>The teacher's outputs for a batch of unaugmented images: from <see cref="Distillation.Outputs"/> when every
    /// image was seen before, else computed for the whole batch and remembered.</summary>
    static Tensor CachedTeacherLogits(OnnxModule teacher, Distillation distillation, Dataset data, Batch batch, Tensor images)
    {
        var entry = distillation.Outputs.GetValue(data, d => new TeacherOutputs(distillation.Teacher, new float[]?[d.Count]));
        if (!ReferenceEquals(entry.Teacher, distillation.Teacher))
        {
            distillation.Outputs.AddOrUpdate(data, entry = new TeacherOutputs(distillation.Teacher, new float[]?[data.Count]));
        }
        var outputs = entry.Values;
        if (batch.Indices.Length != batch.Count || batch.Indices.Any(i => outputs[i] is null))
        {
            var logits = TeacherLogits(teacher, images);
            using var cpu = logits.contiguous();
            var values = cpu.data<float>().ToArray();
            int classes = values.Length / batch.Count;
            for (int k = 0; k < batch.Indices.Length; k++) outputs[batch.Indices[k]] = values.AsSpan(k * classes, classes).ToArray();
            return logits;
        }
        int width = outputs[batch.Indices[0]]!.Length;
        var flat = new float[batch.Count * width];
        for (int k = 0; k < batch.Count; k++) outputs[batch.Indices[k]]!.CopyTo(flat, k * width);
        return tensor(flat, [batch.Count, width]);
    }

    static Tensor Loss(Tensor logits, Tensor labels, Tensor? teacherLogits, TrainingOptions options)
    {
        var crossEntropy = nn.functional.cross_entropy(logits, labels, label_smoothing: options.LabelSmoothing);
        if (teacherLogits is null || options.Distillation is not { } distillation) return crossEntropy;
        double t = distillation.Temperature;
        // Hinton et al. 2015: KL(teacher ‖ student) on softened outputs, scaled by T² to keep gradients comparable.
        var kl = nn.functional.kl_div(logits.DividedBy(t).log_softmax(1), teacherLogits.DividedBy(t).log_softmax(1), log_target: true,
                                      reduction: nn.Reduction.Sum).Times(t * t / logits.shape[0]); // "batchmean"
        return kl.Times(distillation.Weight).Plus(crossEntropy.Times(1 - distillation.Weight));
    }

    internal static double LearningRate(TrainingOptions options, long step, int stepsPerEpoch, long totalSteps)
    {
        double warmupSteps = options.WarmupEpochs * stepsPerEpoch;
        if (step < warmupSteps) return options.LearningRate * (step + 1) / warmupSteps;
        return options.Schedule switch
        {
            ScheduleKind.Cosine => options.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * (step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps))),
            ScheduleKind.Step => options.LearningRate * Math.Pow(options.StepGamma, step / stepsPerEpoch / Math.Max(1, options.StepEpochs)),
            _ => options.LearningRate,
        };
    }

    internal static (Tensor Images, Tensor Labels) ToTensors(Batch batch, Dataset layout) =>
        (tensor(batch.Pixels, [batch.Count, layout.Channels, layout.Height, layout.Width]),
         tensor(batch.Labels.Select(l => (long)l).ToArray(), ScalarType.Int64));

    /// <summary>Where each listed parameter is zero now: the entries to keep at zero.</summary>
    static List<(Tensor Parameter, Tensor Zeros)> ZeroMasks(OnnxModule module, IReadOnlyList<string>? names)
    {
        var masks = new List<(Tensor, Tensor)>();
        foreach (string name in names ?? [])
        {
            if (!module.NamedParameters.TryGetValue(name, out var parameter))
                throw new ArgumentException($"'{name}' is not a trainable parameter of the model, so its sparsity cannot be kept");
            using var noGrad = no_grad();
            masks.Add((parameter, parameter.EqualTo(0).DetachFromDisposeScope()));
        }
        return masks;
    }

    /// <summary>masked_fill_ rather than a multiply by 0/1: −w·0 is −0.0, which compresses worse than +0.0.</summary>
    static void KeepZeros(List<(Tensor Parameter, Tensor Zeros)> masks)
    {
        if (masks.Count == 0) return;
        using var noGrad = no_grad();
        foreach (var (parameter, zeros) in masks) parameter.ZeroWhere(zeros);
    }

    static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }
}

/// <summary>Training produced a non-finite loss; the trial that asked for it should be recorded as failed.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
