using System.CommandLine;
using System.Globalization;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune compare base.onnx --methods magnitude-global,l1,lrp --amount 0.1,0.5,0.9 [--classes 0,2,5] --out DIR</c>:
/// every method at every amount, fine-tuned alike, with accuracy, MACs, sizes, latency and energy; plots, CSV and report.html.
/// </summary>
static class CompareCommand
{
    public static Command Create(CliContext context)
    {
        var model = ModelInput.Argument("the trained base model (ONNX; N×C×H×W pixels in [0, 1] in, logits out)");
        var namedModel = new Option<FileInfo?>("--model") { Description = "the model, where it is not given first" };
        var data = new Option<string>("--data", "-d") { Description = "fashion-mnist, fashion-mnist-sample or a dataset directory (IDX, CIFAR binary, image folders)", DefaultValueFactory = _ => "fashion-mnist" };
        var methods = new Option<string>("--methods")
        {
            Description = $"comma-separated, from: {string.Join(", ", PruningMethod.Names)} (int8: the unpruned model quantized; METHOD+int8, e.g. l1+int8: pruned, fine-tuned, then quantized)",
            DefaultValueFactory = _ => string.Join(",", PruningMethod.Default.Select(m => m.Name)),
        };
        var amounts = new Option<string>("--amount", "-a", "--amounts")
        {
            Description = "comma-separated fractions in (0, 1): of the channels of every group (structured), of the weights (unstructured)",
            DefaultValueFactory = _ => "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9",
        };
        var epochs = new Option<int>("--finetune-epochs") { Description = "fine-tuning epochs after pruning, the same for every method (0: none)", DefaultValueFactory = _ => 1 };
        var steps = new Option<int?>("--max-steps-per-epoch", "--finetune-steps") { Description = "at most this many steps in each fine-tuning epoch, not in all of them (a time budget; the total with --finetune-epochs 1, the default)" };
        var learningRate = new Option<double>("--lr") { Description = "peak learning rate of fine-tuning", DefaultValueFactory = _ => 0.01 };
        var batchSize = new Option<int>("--batch-size") { Description = "images per batch of fine-tuning and recalibration", DefaultValueFactory = _ => 64 };
        var recalibration = new Option<int>("--recalibration-batches") { Description = "BN recalibration batches of a structured point before fine-tuning", DefaultValueFactory = _ => 20 };
        var roundTo = new Option<int>("--round-to") { Description = "round kept channel counts of structured methods to a multiple (8 suits SIMD runtimes)", DefaultValueFactory = _ => 1 };
        var importanceBatches = new Option<int>("--importance-batches") { Description = "batches of 64 images measured by data-driven criteria (taylor, apoz, lrp)", DefaultValueFactory = _ => 8 };
        var classes = new Option<string?>("--classes") { Description = "task specialisation: class indices or names, comma-separated (e.g. 0,2,5 or trouser,bag)" };
        var specialiseEpochs = new Option<int>("--specialisation-epochs", "--specialise-epochs") { Description = "fine-tuning epochs of the specialised base model on the class subset", DefaultValueFactory = _ => 1 };
        var tolerance = new Option<double>("--tolerance") { Description = "accuracy loss that still counts as equal accuracy (0.01 = one point)", DefaultValueFactory = _ => 0.01 };
        var device = new Option<string>("--device") { Description = "where latency and energy come from: " + DeviceSpec.Help, DefaultValueFactory = _ => "pi4-estimate" };
        device.CompletionSources.Add(DeviceSpec.Suggested);
        var latencyDevice = new Option<string?>("--latency-device") { Description = "measure latency elsewhere than --device (e.g. local: does sparsity change host latency?)" };
        var tokenFile = new Option<FileInfo?>("--token-file") { Description = "bearer token of the device agent, with an http:// device" };
        var retryWindow = DeviceSpec.RetryWindowOption();
        var meter = new Option<string?>("--meter") { Description = $"energy meter for a local device: {string.Join(", ", Devices.Meters.MeterSpec.AcceptedForms)}" };
        var measureBudget = new Option<double>("--measure-budget") { Description = "seconds of timed runs per point on a measuring device", DefaultValueFactory = _ => 2 };
        var validation = new Option<double>("--validation") { Description = "fraction of the training set held out, stratified, for validation accuracy", DefaultValueFactory = _ => 0.1 };
        var validationLimit = new Option<int?>("--validation-limit") { Description = "score on at most this many validation images" };
        var seed = new Option<int>("--seed") { Description = "seed of fine-tuning, importance sampling and the validation split", DefaultValueFactory = _ => 0 };
        var threads = new Option<int?>("--threads") { Description = "training threads (default: all cores)" };
        var saveModels = new Option<bool>("--save-models") { Description = "keep every point's deployed model under DIR/models/" };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "run directory (comparison.db, points.csv, plots, report.html)", Required = true };
        var resume = new Option<bool>("--resume") { Description = "continue the comparison in --out (same fine-tuning and devices; methods, amounts and --classes may change)" };
        var calibration = new Option<string>("--calibration") { Description = "with int8 methods: activation ranges by minmax or percentile (99.99 %)", DefaultValueFactory = _ => "minmax" };
        calibration.AcceptOnlyFromAmong("minmax", "percentile");
        var calibrationImages = new Option<int>("--calibration-images") { Description = "with int8 methods: training images the activation ranges are calibrated on", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "print a JSON summary for scripts" };
        var command = new Command("compare",
            "Compare pruning methods (unstructured magnitude against structured filter criteria) at several amounts, fine-tuned alike: " +
            "accuracy, MACs, parameters, sizes, latency and energy; with --classes, also after specialising the model to a class subset.")
        {
            model, namedModel, data, methods, amounts, epochs, steps, learningRate, batchSize, recalibration, roundTo, importanceBatches, classes, specialiseEpochs, tolerance,
            device, latencyDevice, tokenFile, retryWindow, meter, measureBudget, validation, validationLimit, seed, threads, saveModels, output, resume,
            calibration, calibrationImages, json,
        };
        command.SetAction(async (parse, _) =>
        {
            bool asJson = parse.GetValue(json);
            var progressContext = context.ForProgress(asJson);
            string modelPath = (ModelInput.Value(parse, model, namedModel) ?? throw new UserInputException("give the model: paretoprune compare MODEL …")).FullName;
            string outputDirectory = parse.GetRequiredValue(output).FullName;
            bool resuming = parse.GetValue(resume);
            if (!resuming && File.Exists(Path.Combine(outputDirectory, MethodComparison.StoreFile)))
                throw new UserInputException($"{outputDirectory} already holds a comparison: add --resume to continue it, or choose another --out");
            var chosen = PruningMethod.ParseList(parse.GetValue(methods)!);
            var fractions = ParseAmounts(parse.GetValue(amounts)!);
            double fraction = parse.GetValue(validation);
            if (fraction is <= 0 or >= 1) throw new UserInputException($"--validation must be in (0, 1), got {fraction}");

            var baseModel = OnnxModel.Load(modelPath);
            var searchData = SearchData.For(baseModel, TrainingRunner.LoadData(parse.GetValue(data)!, ModelInterface.Read(baseModel)), fraction, parse.GetValue(seed),
                                            parse.GetValue(validationLimit));
            TrainingRunner.CheckFits(baseModel, searchData.Train);
            int[]? subset = parse.GetValue(classes) is { } list ? ClassSubset.Resolve(list.Split(','), searchData.Train.ClassNames) : null;

            DeviceSpec.CheckRetryWindow(parse.GetValue(retryWindow), parse.GetValue(device), parse.GetValue(latencyDevice));
            using var deviceSpec = await DeviceSpec.OpenAsync(parse.GetValue(device)!, parse.GetValue(meter), parse.GetValue(tokenFile), CancellationToken.None,
                                                              parse.GetValue(retryWindow));
            using var latencySpec = parse.GetValue(latencyDevice) is { } latencyText
                ? await DeviceSpec.OpenAsync(latencyText, null, parse.GetValue(tokenFile), CancellationToken.None, parse.GetValue(retryWindow)) : null;
            var targets = DeviceSpec.Targets(deviceSpec, latencySpec, latency: true, energy: true);
            if (deviceSpec.Device is not null && !deviceSpec.MeasuresEnergy)
                progressContext.Console.MarkupLine($"[yellow]no energy figures: {Markup.Escape(deviceSpec.EnergyNote ?? "")}[/]");

            var options = new ComparisonOptions
            {
                OutputDirectory = outputDirectory,
                Methods = chosen,
                Amounts = fractions,
                FineTuneEpochs = parse.GetValue(epochs),
                FineTuneStepsPerEpoch = parse.GetValue(steps),
                LearningRate = parse.GetValue(learningRate),
                BatchSize = parse.GetValue(batchSize),
                RecalibrationBatches = parse.GetValue(recalibration),
                ImportanceBatches = parse.GetValue(importanceBatches),
                RoundTo = parse.GetValue(roundTo),
                Classes = subset,
                SpecialisationEpochs = parse.GetValue(specialiseEpochs),
                AccuracyTolerance = parse.GetValue(tolerance),
                Devices = targets,
                Measurement = new MeasurementPlan { WarmupRuns = 5, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(parse.GetValue(measureBudget)) },
                SaveModels = parse.GetValue(saveModels),
                Resume = resuming,
                Seed = parse.GetValue(seed),
                Threads = parse.GetValue(threads),
                Quantization = new QuantizationOptions
                {
                    Calibration = parse.GetValue(calibration) == "percentile" ? CalibrationMethod.Percentile : CalibrationMethod.MinMax,
                    CalibrationImages = parse.GetValue(calibrationImages),
                },
            };
            var comparison = new MethodComparison(new MLContext(seed: options.Seed), options);
            progressContext.Console.MarkupLine($"[grey]{Markup.Escape(searchData.Description)}; {searchData.Train.Count:N0} training and " +
                                               $"{searchData.Validation.Count:N0} validation images; {Markup.Escape(targets.Description)}[/]");
            if (searchData.Caveat is { } caveat) progressContext.Console.MarkupLine($"[yellow]warning: {Markup.Escape(caveat)}[/]");

            using var interruption = new Interruption(context.Error, "stopping after the point in flight (Ctrl-C again to abandon it)…");
            ComparisonResult result;
            try
            {
                result = await RunWithProgress(progressContext, comparison, modelPath, searchData, interruption.Stop, interruption.Abort);
            }
            catch (OperationCanceledException) when (interruption.Abort.IsCancellationRequested)
            {
                context.Error.WriteLine($"abandoned; the point in flight will be evaluated again by: paretoprune compare … --out {outputDirectory} --resume");
                return Interruption.ExitCode;
            }
            int summarised = Summarise(context, progressContext, result, asJson);
            return interruption.Stop.IsCancellationRequested && summarised == ExitCodes.Success ? Interruption.ExitCode : summarised;
        });
        return command;
    }

    /// <summary>The numbers of --amount; their range is checked with the other options (<see cref="ComparisonOptions"/>).</summary>
    static IReadOnlyList<double> ParseAmounts(string text) =>
        text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(entry => double.TryParse(entry, NumberStyles.Float, CultureInfo.InvariantCulture, out double amount) ? amount
                : throw new UserInputException($"--amount takes fractions separated by commas (e.g. 0.1,0.5,0.9); '{entry}' is not a number"))
            .ToList();

    static Task<ComparisonResult> RunWithProgress(CliContext context, MethodComparison comparison, string modelPath, SearchData data,
                                                  CancellationToken stop, CancellationToken abort) =>
        ProgressDisplay.RunAsync<ComparisonProgress, ComparisonResult>(context, progress => comparison.RunAsync(modelPath, data, progress, stop, abort),
            p => new(p.Completed, p.Total,
                     $"{p.Task} {p.Completed}/{p.Total}" + (p.Failed > 0 ? $" ({p.Failed} failed)" : "") + (p.Remaining is { } r ? $" · ETA {r:hh\\:mm\\:ss}" : ""),
                     p.Message, Keep: p.Point is not null));

    /// <summary>Why a finished comparison has nothing to compare (every pruned point failed), with the failures counted;
    /// null otherwise.</summary>
    internal static string? NothingCompared(ComparisonResult result)
    {
        var points = result.Points.Where(p => !p.IsBaseline).ToList();
        if (result.Status != StudyStatus.Finished || points.Count == 0 || points.Any(p => !p.Failed)) return null;
        return FailureReasons.Summarise(points.Select(p => p.Error!).ToList(), points.Count, "points") +
               FailureReasons.NextStep(Path.Combine(result.RunDirectory, "points.csv"));
    }

    static int Summarise(CliContext cli, CliContext context, ComparisonResult result, bool json)
    {
        int code = SummarisePoints(cli, context, result, json);
        if (NothingCompared(result) is not { } nothing) return code;
        context.Error.WriteLine(nothing);
        return code == ExitCodes.Success ? ExitCodes.NoResult : code;
    }

    static int SummarisePoints(CliContext cli, CliContext context, ComparisonResult result, bool json)
    {
        string report = Path.Combine(result.RunDirectory, "report.html");
        string plotsDirectory = Path.Combine(result.RunDirectory, "plots");
        var plots = Directory.Exists(plotsDirectory) ? Directory.GetFiles(plotsDirectory).Order(StringComparer.Ordinal).ToArray() : [];
        if (json)
        {
            Json.Write(cli.Output, new
            {
                runDirectory = result.RunDirectory,
                status = result.Status.Name(),
                points = result.Points.Count(p => !p.IsBaseline),
                failed = result.Points.Count(p => p.Failed),
                baselines = result.Tasks.Select(t => new { task = t, values = result.Baseline(t)?.Values }),
                best = result.BestMethods.Select(w => new
                {
                    task = w.Task, budget = w.Budget, cost = w.Cost?.Name(), limit = w.Limit, method = w.Best?.Method, amount = w.Best?.Amount,
                    accuracy = w.Best?.Value(ObjectiveKind.Accuracy), bestStructured = w.BestStructured?.Method, bestUnstructured = w.BestUnstructured?.Method,
                }),
                specialisation = result.Specialisation.Select(g => new
                {
                    task = g.Task, method = g.Method, family = g.Family.ToString().ToLowerInvariant(), allClasses = g.AllClassesAmount, subset = g.SubsetAmount, gain = g.Gain,
                }),
                csv = Path.Combine(result.RunDirectory, "points.csv"),
                report,
                plots,
            });
            return ExitCodes.Success;
        }
        var console = context.Console;
        if (result.Status != StudyStatus.Finished)
            console.MarkupLine($"[yellow]stopped; continue with --resume --out {Markup.Escape(result.RunDirectory)}[/]");
        foreach (string task in result.Tasks)
        {
            var winners = result.BestMethods.Where(w => w.Task == task && w.Cost is null).ToList();
            if (winners.Count == 0) continue;
            var table = new Table().Border(TableBorder.Rounded).Title($"best method at each amount ({Markup.Escape(task)})")
                .AddColumn("amount").AddColumn("best").AddColumn(new TableColumn("accuracy").RightAligned()).AddColumn("best structured").AddColumn("best unstructured");
            string Cell(ComparisonPoint? p) => p is null ? "" : $"{Markup.Escape(p.Method)} {ObjectiveKind.Accuracy.Format(p.Value(ObjectiveKind.Accuracy)!.Value)}";
            foreach (var w in winners)
                table.AddRow(w.Limit.ToString("0.###", CultureInfo.InvariantCulture), Markup.Escape(w.Best?.Method ?? ""),
                             w.Best is null ? "" : ObjectiveKind.Accuracy.Format(w.Best.Value(ObjectiveKind.Accuracy)!.Value), Cell(w.BestStructured), Cell(w.BestUnstructured));
            console.Write(table);
            if (result.Baseline(task) is { } baseline)
            {
                string values = string.Join(", ", baseline.Values.Select(v => $"{v.Kind.Name()} {v.Kind.Format(v.Value)}"));
                console.MarkupLine($"[grey]{Markup.Escape(task)} baseline: {Markup.Escape(values)}[/]");
            }
        }
        if (result.Specialisation.Count > 0)
        {
            var table = new Table().Border(TableBorder.Rounded).Title("largest amount at equal accuracy")
                .AddColumn("method").AddColumn(new TableColumn("all classes").RightAligned()).AddColumn(new TableColumn("subset").RightAligned())
                .AddColumn(new TableColumn("gain").RightAligned());
            static string Amount(double? a) => a?.ToString("0.###", CultureInfo.InvariantCulture) ?? "";
            foreach (var g in result.Specialisation) table.AddRow(Markup.Escape(g.Method), Amount(g.AllClassesAmount), Amount(g.SubsetAmount), Amount(g.Gain));
            console.Write(table);
        }
        foreach (var v in result.Baseline(ComparisonTasks.All)?.Values ?? [])
            console.MarkupLine($"[grey]{Markup.Escape(v.Kind.Name())}: {Markup.Escape(v.Provenance.ToString())}[/]");
        console.MarkupLine($"report: {Markup.Escape(report)}");
        console.MarkupLine($"points: {Markup.Escape(Path.Combine(result.RunDirectory, "points.csv"))}");
        foreach (var plot in plots.Where(p => p.EndsWith(".png", StringComparison.Ordinal))) console.MarkupLine($"plot: {Markup.Escape(plot)}");
        return ExitCodes.Success;
    }
}
