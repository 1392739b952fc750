using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli;

/// <summary>Runs a training with progress on the terminal (a live bar when interactive, a line per epoch otherwise).</summary>
static class TrainingRunner
{
    public static TrainingResult Run(CliContext context, OnnxModule module, Dataset train, Dataset validation, TrainingOptions options,
                                     CancellationToken cancellation)
    {
        void Epoch(EpochResult e) => context.Console.MarkupLine(
            $"epoch {e.Epoch}/{options.Epochs}: loss {e.TrainLoss:0.0000}, train {e.TrainAccuracy:P2}, " +
            $"validation {e.ValidationAccuracy:P2}, {e.ImagesPerSecond:0} images/s, lr {e.LearningRate:G3}");

        if (!context.IsInteractive)
        {
            // Logs and CI: one line per epoch, written as each epoch ends.
            int reported = 0;
            var progress = new InlineProgress<TrainingProgress>(p =>
            {
                if (p.Step == 1 && p.Epoch > 1 && reported < p.Epoch - 1) context.Console.MarkupLine($"[grey]epoch {p.Epoch - 1} done[/]");
                if (p.Step == 1) reported = p.Epoch - 1;
            });
            var result = Trainer.Train(module, train, validation, options, progress, cancellation);
            foreach (var e in result.Epochs) Epoch(e);
            return result;
        }

        TrainingResult? outcome = null;
        context.Console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("training", maxValue: 1);
                var progress = new InlineProgress<TrainingProgress>(p =>
                {
                    task.MaxValue = (double)p.Epochs * p.StepsPerEpoch;
                    task.Value = (p.Epoch - 1) * p.StepsPerEpoch + p.Step;
                    task.Description = $"epoch {p.Epoch}/{p.Epochs} loss {p.Loss:0.000} acc {p.Accuracy:P1} {p.ImagesPerSecond:0} img/s";
                });
                outcome = Trainer.Train(module, train, validation, options, progress, cancellation);
                task.Value = task.MaxValue;
            });
        foreach (var e in outcome!.Epochs) Epoch(e);
        return outcome;
    }

    /// <summary>Loads a dataset by name or directory; images are read at the model's size when it declares one.</summary>
    public static TrainTest LoadData(string spec, ModelInterface? declared = null) =>
        declared is null ? DatasetCatalog.Load(spec) : DatasetCatalog.Load(spec, declared.Height, declared.Width, declared.Channels);

    /// <summary>Checks that a dataset fits a model's input before minutes of training find out.</summary>
    public static void CheckFits(ModelProto model, Dataset data)
    {
        var shape = ModelCost.Analyze(model).InputShape;
        if (shape.Length != 4 || shape[1] != data.Channels || shape[2] != data.Height || shape[3] != data.Width)
            throw new UserInputException($"the model takes input {string.Join("x", shape)} but the data has images of " +
                                         $"{data.Channels}x{data.Height}x{data.Width}");
        var classes = ModelCost.Analyze(model).OutputShape;
        if (classes.Length != 2 || classes[1] != data.ClassNames.Count)
            throw new UserInputException($"the model has {(classes.Length == 2 ? classes[1] : 0)} outputs but the data has {data.ClassNames.Count} classes");
    }
}

/// <summary>IProgress that calls back on the reporting thread, so the bar moves while training runs.</summary>
sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
