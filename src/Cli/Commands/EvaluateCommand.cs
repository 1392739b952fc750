using System.CommandLine;
using Microsoft.ML;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Scoring;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune evaluate MODEL.onnx --data … [--split test|validation] [--json]</c>: accuracy through ML.NET, and the analytic costs.</summary>
static class EvaluateCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<FileInfo>("model") { Description = "ONNX classifier taking N×C×H×W pixels in [0, 1]" };
        var data = new Option<string>("--data", "-d") { Description = "fashion-mnist, fashion-mnist-sample or a dataset directory", DefaultValueFactory = _ => "fashion-mnist" };
        var split = new Option<string>("--split") { Description = "test, or validation (the stratified split train uses)", DefaultValueFactory = _ => "test" };
        split.AcceptOnlyFromAmong("test", "validation");
        var fraction = new Option<double>("--validation") { Description = "validation fraction, as given to train", DefaultValueFactory = _ => 0.1 };
        var seed = new Option<int>("--seed") { Description = "split seed, as given to train", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var command = new Command("evaluate", "Score a classifier through an ML.NET ApplyOnnxModel pipeline and show its costs.") { model, data, split, fraction, seed, json };
        command.SetAction(parse =>
        {
            var file = parse.GetRequiredValue(model);
            var onnx = OnnxModel.Load(file.FullName);
            InputChecks.FiniteWeights(onnx, file.FullName);
            var sets = TrainingRunner.LoadData(parse.GetValue(data)!, ModelInterface.Read(onnx));
            string which = parse.GetValue(split)!.ToLowerInvariant();
            // Validation keeps to images the model did not train on, as far as it records (the hold-out of its own training).
            var chosen = which == "validation" ? ValidationImages.Choose(TrainingImages.Read(onnx), sets, parse.GetValue(fraction), parse.GetValue(seed)) : null;
            var images = which switch
            {
                "test" => sets.Test,
                "validation" => chosen!.Validation,
                _ => throw new UserInputException($"--split must be test or validation, got '{which}'"),
            };
            TrainingRunner.CheckFits(onnx, images);
            var metrics = new ClassifierScorer(new MLContext(seed: 0)).Score(file.FullName, images, which);
            var cost = ModelCost.Analyze(onnx) with { SerializedBytes = file.Length };
            long compressed = ModelSize.Compressed(File.ReadAllBytes(file.FullName));

            if (parse.GetValue(json))
            {
                Json.Write(context.Output, new
                {
                    accuracy = new
                    {
                        top1 = metrics.Top1, top5 = metrics.Top5, macro = metrics.MacroAccuracy, logLoss = metrics.LogLoss,
                        perClass = metrics.ClassNames.Zip(metrics.PerClassAccuracy).ToDictionary(p => p.First, p => p.Second),
                        confusionMatrix = metrics.ConfusionMatrix, images = metrics.Count,
                        provenance = metrics.Provenance.ToString(), split = chosen?.Description, caveat = chosen?.Caveat,
                    },
                    costs = new
                    {
                        macs = cost.Macs, @params = cost.Params, bytes = cost.SerializedBytes, compressedBytes = compressed,
                        peakActivationBytes = cost.PeakActivationBytes, provenance = Provenance.Computed.ToString(),
                    },
                });
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumn("class").AddColumn(new TableColumn("accuracy").RightAligned());
            foreach (var (name, accuracy) in metrics.ClassNames.Zip(metrics.PerClassAccuracy)) table.AddRow(Markup.Escape(name), accuracy.ToString("P1"));
            context.Console.Write(table);
            context.Console.MarkupLine($"top-1 [bold]{metrics.Top1:P2}[/], top-5 {metrics.Top5:P2}, macro {metrics.MacroAccuracy:P2}, log-loss {metrics.LogLoss:0.0000} " +
                                       $"[grey]({Markup.Escape(metrics.Provenance.ToString())}, ML.NET ApplyOnnxModel)[/]");
            if (chosen is not null) context.Console.MarkupLine($"[grey]{Markup.Escape(chosen.Description)}[/]");
            if (chosen?.Caveat is { } caveat) context.Console.MarkupLine($"[yellow]warning: {Markup.Escape(caveat)}[/]");
            context.Console.MarkupLine($"MACs [bold]{Units.Count(cost.Macs)}[/], params {Units.Count(cost.Params)}, file {Units.Bytes(cost.SerializedBytes)} " +
                                       $"(gzip {Units.Bytes(compressed)}), peak activations {Units.Bytes(cost.PeakActivationBytes)} [grey](computed from the graph)[/]");
            return ExitCodes.Success;
        });
        return command;
    }
}
