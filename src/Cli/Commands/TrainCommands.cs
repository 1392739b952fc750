using System.CommandLine;
using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune train</c> (a base model from a built-in architecture) and <c>paretoprune finetune</c> (a pruned one).</summary>
static class TrainCommands
{
    sealed record Common(Option<string> Data, Option<int> Epochs, Option<int> BatchSize, Option<double?> LearningRate, Option<string> Optimizer,
                         Option<string> Schedule, Option<double> Warmup, Option<double> LabelSmoothing, Option<bool> Augment, Option<int> Seed,
                         Option<int?> Threads, Option<double> Validation, Option<int?> Patience, Option<int?> MaxSteps, Option<FileInfo> Out, Option<bool> Json);

    static Common CommonOptions() => new(
        new Option<string>("--data", "-d") { Description = "dataset: fashion-mnist (the full set if installed, else the embedded sample), fashion-mnist-sample, or a directory (IDX, CIFAR binary, image folders)", DefaultValueFactory = _ => "fashion-mnist" },
        new Option<int>("--epochs", "-e") { Description = "epochs", DefaultValueFactory = _ => 10 },
        new Option<int>("--batch-size") { Description = "images per step", DefaultValueFactory = _ => 128 },
        new Option<double?>("--lr") { Description = "peak learning rate (default 0.05 for SGD, 0.001 for AdamW)" },
        new Option<string>("--optimizer") { Description = "sgd (momentum 0.9, Nesterov) or adamw", DefaultValueFactory = _ => "sgd" },
        new Option<string>("--schedule") { Description = "cosine, step (×0.1 every 30 epochs) or constant", DefaultValueFactory = _ => "cosine" },
        new Option<double>("--warmup") { Description = "epochs of linear learning-rate warm-up", DefaultValueFactory = _ => 0 },
        new Option<double>("--label-smoothing") { Description = "label smoothing", DefaultValueFactory = _ => 0 },
        new Option<bool>("--augment") { Description = "random crops (4-pixel padding) and horizontal flips" },
        new Option<int>("--seed") { Description = "seed for initialisation, data order and splits", DefaultValueFactory = _ => 0 },
        new Option<int?>("--threads") { Description = "CPU threads (default: all cores)" },
        new Option<double>("--validation") { Description = "fraction of the training set held out, stratified, for validation", DefaultValueFactory = _ => 0.1 },
        new Option<int?>("--patience") { Description = "early stopping: epochs without validation improvement (best weights kept)" },
        new Option<int?>("--max-steps-per-epoch") { Description = "a time budget: at most this many steps per epoch" },
        new Option<FileInfo>("--out", "-o") { Description = "where to write the trained ONNX model", Required = true },
        new Option<bool>("--json") { Description = "print a JSON summary for scripts" });

    static void AddTo(Command command, Common c)
    {
        foreach (var option in new Option[] { c.Data, c.Epochs, c.BatchSize, c.LearningRate, c.Optimizer, c.Schedule, c.Warmup, c.LabelSmoothing,
                                              c.Augment, c.Seed, c.Threads, c.Validation, c.Patience, c.MaxSteps, c.Out, c.Json })
            command.Add(option);
    }

    static TrainingOptions Options(ParseResult parse, Common c, Distillation? distillation)
    {
        var optimizer = parse.GetValue(c.Optimizer)!.ToLowerInvariant() switch
        {
            "sgd" => OptimizerKind.Sgd,
            "adamw" => OptimizerKind.AdamW,
            var other => throw new UserInputException($"--optimizer must be sgd or adamw, got '{other}'"),
        };
        var schedule = parse.GetValue(c.Schedule)!.ToLowerInvariant() switch
        {
            "cosine" => ScheduleKind.Cosine,
            "step" => ScheduleKind.Step,
            "constant" => ScheduleKind.Constant,
            var other => throw new UserInputException($"--schedule must be cosine, step or constant, got '{other}'"),
        };
        if (parse.GetValue(c.Epochs) < 1) throw new UserInputException("--epochs must be at least 1");
        return new TrainingOptions
        {
            Epochs = parse.GetValue(c.Epochs),
            BatchSize = parse.GetValue(c.BatchSize),
            Optimizer = optimizer,
            LearningRate = parse.GetValue(c.LearningRate) ?? (optimizer == OptimizerKind.Sgd ? 0.05 : 0.001),
            WeightDecay = optimizer == OptimizerKind.Sgd ? 5e-4 : 0.01,
            Schedule = schedule,
            WarmupEpochs = parse.GetValue(c.Warmup),
            LabelSmoothing = parse.GetValue(c.LabelSmoothing),
            Augmentation = parse.GetValue(c.Augment) ? new Augmentation(CropPadding: 4, HorizontalFlip: true) : null,
            Seed = parse.GetValue(c.Seed),
            Threads = parse.GetValue(c.Threads),
            EarlyStoppingPatience = parse.GetValue(c.Patience),
            MaxStepsPerEpoch = parse.GetValue(c.MaxSteps),
            Distillation = distillation,
        };
    }

    public static Command Train(CliContext context)
    {
        var c = CommonOptions();
        var arch = new Option<string>("--arch") { Description = $"architecture: {string.Join(", ", Architectures.Names)}", Required = true };
        var width = new Option<double>("--width")
        {
            Description = $"width multiplier, scaling every layer of {string.Join(", ", Architectures.Scalable)}", DefaultValueFactory = _ => 1.0,
        };
        var command = new Command("train", "Train a built-in architecture on a dataset and write it as ONNX (normalisation and class names inside).") { arch, width };
        AddTo(command, c);
        command.SetAction((parse, cancellation) => Task.FromResult(Run(context, parse, c, cancellation, data =>
        {
            string name = parse.GetRequiredValue(arch).ToLowerInvariant();
            var train = data.Train;
            try
            {
                return Architectures.Build(name, train.Channels, train.Height, train.ClassNames.Count, parse.GetValue(c.Seed), parse.GetValue(width));
            }
            catch (ArgumentException e)
            {
                throw new UserInputException(e.Message);
            }
        }, teacher: null)));
        return command;
    }

    public static Command Finetune(CliContext context)
    {
        var c = CommonOptions();
        var model = new Argument<FileInfo>("model") { Description = "the (pruned) ONNX model to fine-tune" };
        var teacher = new Option<FileInfo?>("--teacher") { Description = "distil from this model (usually the unpruned one)" };
        var temperature = new Option<double>("--temperature") { Description = "distillation temperature", DefaultValueFactory = _ => 4 };
        var alpha = new Option<double>("--distill-weight") { Description = "share of the loss given to distillation", DefaultValueFactory = _ => 0.7 };
        var overwrite = InputChecks.OverwriteOption();
        var command = new Command("finetune", "Fine-tune a model (typically pruned) on a dataset, optionally distilling from a teacher.") { model, teacher, temperature, alpha, overwrite };
        AddTo(command, c);
        command.SetAction((parse, cancellation) =>
        {
            var file = parse.GetRequiredValue(model);
            InputChecks.WritableFile(parse.GetRequiredValue(c.Out), "--out", file, parse.GetValue(overwrite));
            var student = OnnxModel.Load(file.FullName);
            InputChecks.FiniteWeights(student, file.FullName);
            var teacherFile = parse.GetValue(teacher);
            if (teacherFile is not null) InputChecks.WritableFile(parse.GetRequiredValue(c.Out), "--out", teacherFile, parse.GetValue(overwrite), "the --teacher model");
            var distillation = teacherFile is null ? null
                : new Distillation(OnnxModel.Load(teacherFile.FullName), parse.GetValue(temperature), parse.GetValue(alpha));
            return Task.FromResult(Run(context, parse, c, cancellation, _ => student, distillation));
        });
        return command;
    }

    static int Run(CliContext cli, ParseResult parse, Common c, CancellationToken cancellation,
                   Func<TrainTest, Objectives.Onnx.Proto.ModelProto> makeModel, Distillation? teacher)
    {
        var context = cli.ForProgress(parse.GetValue(c.Json));
        InputChecks.WritableFile(parse.GetRequiredValue(c.Out), "--out"); // before the training, not after it
        var watch = Stopwatch.StartNew();
        string spec = parse.GetValue(c.Data)!;
        var data = TrainingRunner.LoadData(spec);
        double fraction = parse.GetValue(c.Validation);
        if (fraction is <= 0 or >= 1) throw new UserInputException($"--validation must be in (0, 1), got {fraction}");
        var (train, validation) = DatasetSplit.Stratified(data.Train, fraction, parse.GetValue(c.Seed));
        var model = makeModel(data);
        if (ModelInterface.Read(model) is null)
        {
            var statistics = ChannelStatistics.Compute(train);
            model = new ModelInterface(train.ClassNames, train.Channels, train.Height, train.Width, statistics.Mean, statistics.Std).Prepend(model);
        }
        TrainingRunner.CheckFits(model, train);
        if (teacher is not null) TrainingRunner.CheckFits(teacher.Teacher, train);
        var options = Options(parse, c, teacher);
        context.Console.MarkupLine($"[grey]{Markup.Escape(data.Description)}; {train.Count:N0} training and {validation.Count:N0} validation images " +
                                   $"(test set held out); {options.Threads ?? Environment.ProcessorCount} threads[/]");

        using var module = new OnnxModule(model);
        var result = TrainingRunner.Run(context, module, train, validation, options, cancellation);
        var trained = module.WriteBack();
        var validationAccuracy = Trainer.Evaluate(module, validation).Accuracy;
        var test = Trainer.Evaluate(module, data.Test);
        var output = parse.GetRequiredValue(c.Out);
        TrainingImages.Append(trained, TrainingImages.Of(data, fraction, parse.GetValue(c.Seed))); // later validation keeps to unseen images
        OnnxModel.Save(trained, output.FullName);
        var cost = ModelCost.Analyze(trained);

        if (parse.GetValue(c.Json))
        {
            Json.Write(cli.Output, new
            {
                output = output.FullName,
                data = data.Description,
                epochs = result.Epochs.Count,
                cancelled = result.Cancelled,
                validationAccuracy,
                testAccuracy = test.Accuracy,
                testLoss = test.Loss,
                seconds = watch.Elapsed.TotalSeconds,
                macs = cost.Macs,
                @params = cost.Params,
                history = result.Epochs,
                provenance = $"accuracy measured by TorchSharp on the validation split ({validation.Count} images) and the test set ({data.Test.Count} images)",
                kernels = TorchRuntime.Decision?.ToString(),
            });
        }
        else
        {
            context.Console.MarkupLine($"validation accuracy [bold]{validationAccuracy:P2}[/] ({validation.Count:N0} images), test accuracy [bold]{test.Accuracy:P2}[/] " +
                                       $"({data.Test.Count:N0} images), {watch.Elapsed.TotalMinutes:0.0} min{(result.Cancelled ? ", [yellow]cancelled[/]" : "")}");
            context.Console.MarkupLine($"wrote [bold]{Markup.Escape(output.FullName)}[/]: {Units.Count(cost.Macs)} MACs, {Units.Count(cost.Params)} params");
            if (TorchRuntime.Decision is { } kernels) context.Console.MarkupLine($"[grey]kernels: {Markup.Escape(kernels.ToString())}[/]");
        }
        return ExitCodes.Success;
    }
}
