using System.CommandLine;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune quantize MODEL --out INT8 [--data D] [--calibration minmax|percentile] [--keep-first-last-float]</c>:
/// static INT8 quantisation (<see cref="Int8Quantizer"/>), then the float and INT8 models side by side: test accuracy
/// through ML.NET, file sizes, latency and energy on the device, each with its provenance.
/// </summary>
static class QuantizeCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<FileInfo>("model") { Description = "float ONNX model to quantize (BatchNormalization is folded first)" };
        var output = new Option<FileInfo>("--out", "-o") { Description = "where to write the INT8 model", Required = true };
        var data = new Option<string>("--data", "-d")
        {
            Description = "dataset: calibration images come from its training split, accuracy from its test split (fashion-mnist, fashion-mnist-sample or a directory)",
            DefaultValueFactory = _ => "fashion-mnist",
        };
        var calibration = new Option<string>("--calibration") { Description = "activation ranges: minmax (nothing clips) or percentile (rare extremes clip)", DefaultValueFactory = _ => "minmax" };
        calibration.AcceptOnlyFromAmong("minmax", "percentile");
        var percentile = new Option<double>("--percentile") { Description = "with --calibration percentile: the share of values (%) each range keeps", DefaultValueFactory = _ => 99.99 };
        var images = new Option<int>("--calibration-images") { Description = "training images the ranges are calibrated on", DefaultValueFactory = _ => 256 };
        var keepEnds = new Option<bool>("--keep-first-last-float") { Description = "leave the first and the last weighted layer in float" };
        var device = new Option<string>("--device") { Description = "where latency and energy come from: " + DeviceSpec.Help, DefaultValueFactory = _ => "pi4-estimate" };
        device.CompletionSources.Add(DeviceSpec.Suggested);
        var latencyDevice = new Option<string?>("--latency-device") { Description = "measure latency elsewhere than --device (e.g. local: is INT8 faster on this CPU?)" };
        var tokenFile = new Option<FileInfo?>("--token-file") { Description = "bearer token of the device agent, with an http:// device" };
        var meter = new Option<string?>("--meter") { Description = $"energy meter for a local device: {string.Join(", ", Devices.Meters.MeterSpec.AcceptedForms)}" };
        var measureBudget = new Option<double>("--measure-budget") { Description = "seconds of timed runs per model on a measuring device", DefaultValueFactory = _ => 3 };
        var seed = new Option<int>("--seed") { Description = "seed of the calibration sample", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var overwrite = InputChecks.OverwriteOption();
        var command = new Command("quantize",
            "Quantize a model to INT8 (static, QDQ: per-channel weights, calibrated activations) and compare it with the float model: accuracy, size, latency, energy.")
        {
            model, output, data, calibration, percentile, images, keepEnds, device, latencyDevice, tokenFile, meter, measureBudget, seed, json, overwrite,
        };
        command.SetAction(async (parse, ct) =>
        {
            var file = parse.GetRequiredValue(model);
            var outFile = parse.GetRequiredValue(output);
            InputChecks.WritableFile(outFile, "--out", file, parse.GetValue(overwrite));
            var original = OnnxModel.Load(file.FullName);
            InputChecks.FiniteWeights(original, file.FullName);
            var sets = TrainingRunner.LoadData(parse.GetValue(data)!, ModelInterface.Read(original));
            TrainingRunner.CheckFits(original, sets.Train);
            var options = new QuantizationOptions
            {
                Calibration = parse.GetValue(calibration) == "percentile" ? CalibrationMethod.Percentile : CalibrationMethod.MinMax,
                Percentile = parse.GetValue(percentile),
                CalibrationImages = parse.GetValue(images),
                KeepFirstAndLastFloat = parse.GetValue(keepEnds),
                Seed = parse.GetValue(seed),
            };
            var quantized = Int8Quantizer.Quantize(original, sets.Train, options);
            OnnxModel.Save(quantized.Model, outFile.FullName);

            using var deviceSpec = await DeviceSpec.OpenAsync(parse.GetValue(device)!, parse.GetValue(meter), parse.GetValue(tokenFile), ct);
            using var latencySpec = parse.GetValue(latencyDevice) is { } latencyText ? await DeviceSpec.OpenAsync(latencyText, null, parse.GetValue(tokenFile), ct) : null;
            var targets = DeviceSpec.Targets(deviceSpec, latencySpec, latency: true, energy: true);
            var plan = new MeasurementPlan { WarmupRuns = 10, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(parse.GetValue(measureBudget)) };
            var mlContext = new MLContext(seed: 0);
            var rows = new List<(string Name, DeployedFigures Figures)>();
            foreach (var (name, candidate) in new[] { ("float", ModelSurgery.FoldBatchNorm(original)), ("int8", quantized.Model) })
                rows.Add((name, await DeployedFigures.ObserveAsync(mlContext, candidate, sets.Test, "test", name == "float" ? "as given" : quantized.Report.Description,
                                                                     targets, plan, ct)));
            Report(context, parse.GetValue(json), outFile, quantized.Report, rows);
            return ExitCodes.Success;
        });
        return command;
    }

    static void Report(CliContext context, bool json, FileInfo outFile, QuantizationReport report, IReadOnlyList<(string Name, DeployedFigures Figures)> rows)
    {
        if (json)
        {
            Json.Write(context.Output, new
            {
                output = outFile.FullName,
                quantization = report.Description,
                quantizedLayers = report.QuantizedNodes,
                floatLayers = report.FloatNodes,
                quantizedActivations = report.QuantizedTensors,
                foldedActivations = report.FoldedActivations,
                models = rows.Select(r => new
                {
                    model = r.Name,
                    accuracy = r.Figures.Accuracy?.Value, accuracyProvenance = r.Figures.Accuracy?.Provenance.ToString(),
                    bytes = r.Figures.Bytes, compressedBytes = r.Figures.CompressedBytes,
                    device = r.Figures.Device.Select(v => new { kind = v.Kind.Name(), value = v.Value, interval = v.Interval, provenance = v.Provenance.ToString() }),
                }),
            });
            return;
        }
        var (f, q) = (rows[0].Figures, rows[1].Figures);
        var table = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn(new TableColumn("float").RightAligned())
            .AddColumn(new TableColumn("INT8").RightAligned()).AddColumn(new TableColumn("INT8 / float").RightAligned());
        if (f.Accuracy is { } fa && q.Accuracy is { } qa)
            table.AddRow("test accuracy", ObjectiveKind.Accuracy.Format(fa.Value), ObjectiveKind.Accuracy.Format(qa.Value), $"{(qa.Value - fa.Value) * 100:+0.00;-0.00} pt");
        table.AddRow("file", Units.Bytes(f.Bytes), Units.Bytes(q.Bytes), ((double)q.Bytes / f.Bytes).ToString("P1"));
        table.AddRow("file, gzip", Units.Bytes(f.CompressedBytes), Units.Bytes(q.CompressedBytes), ((double)q.CompressedBytes / f.CompressedBytes).ToString("P1"));
        foreach (var value in f.Device)
        {
            var other = q.Device.FirstOrDefault(v => v.Kind == value.Kind);
            if (other is null) continue;
            table.AddRow(Markup.Escape(value.Kind.Info().Label), Markup.Escape(value.Kind.Format(value.Value)), Markup.Escape(other.Kind.Format(other.Value)),
                         value.Value > 0 ? (other.Value / value.Value).ToString("P1") : "");
        }
        context.Console.Write(table);
        foreach (var value in q.Device.Concat(q.Accuracy is { } a ? [a] : []))
            context.Console.MarkupLine($"[grey]{Markup.Escape(value.Kind.Info().Label)}: {Markup.Escape(value.Provenance.ToString())}" +
                                       (value.Interval is { } i ? $"; INT8 {Markup.Escape(value.Kind.Format(value.Value))}, 90 % interval {Markup.Escape(value.Kind.Format(i.Low))} to {Markup.Escape(value.Kind.Format(i.High))}" : "") + "[/]");
        context.Console.MarkupLine($"[grey]{Markup.Escape(report.Description)}; {report.QuantizedNodes.Count} layers INT8" +
                                   (report.FloatNodes.Count > 0 ? $", float: {Markup.Escape(string.Join(", ", report.FloatNodes))}" : "") +
                                   $"; {report.QuantizedTensors} activations quantized, {report.FoldedActivations} activation functions folded[/]");
        context.Console.MarkupLine($"wrote [bold]{Markup.Escape(outFile.FullName)}[/]");
    }
}
