using System.CommandLine;
using ParetoPrune.Devices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune calibrate --device URL --token-file F --models a.onnx b.onnx … --out board.json</c>: measures models
/// on a real device, fits a device profile to them and reports the fit error.
/// </summary>
static class CalibrateCommand
{
    public static Command Create(CliContext context)
    {
        var device = new Option<string>("--device") { Description = "http://HOST:PORT of a device agent, or local", Required = true };
        var tokenFile = new Option<FileInfo?>("--token-file") { Description = "bearer token of the device agent" };
        var models = new Option<FileInfo[]>("--models") { Description = "ONNX models of different sizes (6 or more fit well)", Required = true, AllowMultipleArgumentsPerToken = true };
        var name = new Option<string>("--name") { Description = "profile name", DefaultValueFactory = _ => "my-board" };
        var idle = new Option<double?>("--idle-watts") { Description = "idle power of the board, if known (else measured by the agent's meter)" };
        var budget = new Option<double>("--measure-budget", "--budget") { Description = "seconds of timed runs per model", DefaultValueFactory = _ => 5 };
        var output = new Option<FileInfo>("--out", "-o") { Description = "where to write the profile JSON", Required = true };
        var retryWindow = DeviceSpec.RetryWindowOption();
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var command = new Command("calibrate", "Measure models on a device and fit a device profile (for --device PROFILE.json estimates).")
        {
            device, tokenFile, models, name, idle, budget, output, retryWindow, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            string spec = parse.GetValue(device)!;
            var files = parse.GetRequiredValue(models);
            if (files.Length < 2) throw new UserInputException("--models needs at least two models of different sizes");
            if (spec != "local" && !spec.StartsWith("http", StringComparison.OrdinalIgnoreCase))
                throw new UserInputException($"--device must be http://HOST:PORT of a device agent, or local; got '{spec}'");
            DeviceSpec.CheckRetryWindow(parse.GetValue(retryWindow), spec);
            using var opened = await DeviceSpec.OpenAsync(spec, meter: null, parse.GetValue(tokenFile), cancellation, parse.GetValue(retryWindow));
            var target = opened.Device!;
            var plan = new MeasurementPlan { TimeBudget = TimeSpan.FromSeconds(parse.GetValue(budget)) };

            var samples = new List<(ModelCounts, double, double?)>();
            var rows = new List<(string Model, ModelCounts Counts, Measurement Measurement)>();
            foreach (var file in files)
            {
                var model = OnnxModel.Load(file.FullName);
                var cost = ModelCost.Analyze(model);
                var counts = DeviceCounts.Of(model, cost);
                var measurement = await target.MeasureAsync(OnnxModel.ToBytes(model), cost.InputShape.Skip(1).Select(d => (int)d).ToArray(), plan, cancellation);
                samples.Add((counts, measurement.Latency.MedianMs, measurement.Energy?.JoulesPerInference));
                rows.Add((file.Name, counts, measurement));
                context.ForProgress(parse.GetValue(json)).Console.MarkupLine($"[grey]{Markup.Escape(file.Name)}: {measurement.Latency.MedianMs:0.000} ms[/]");
            }
            double? idleWatts = parse.GetValue(idle) ?? rows.Select(r => r.Measurement.Energy?.IdleWatts).FirstOrDefault(w => w is not null);
            var fit = ProfileCalibration.Fit(samples, parse.GetValue(name)!, target.Name, idleWatts,
                                             $"paretoprune calibrate on {target.Name}, {DateTime.UtcNow:yyyy-MM-dd}, {files.Length} models");
            fit.Profile.Save(parse.GetRequiredValue(output).FullName);

            if (parse.GetValue(json))
            {
                Json.Write(context.Output, new { profile = fit.Profile, fit.Samples, fit.LatencyRmseMs, fit.LatencyMaxRelativeError, fit.EnergyRmseJoules, fit.EnergyMaxRelativeError });
                return ExitCodes.Success;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumn("model").AddColumn(new TableColumn("MACs").RightAligned())
                .AddColumn(new TableColumn("measured").RightAligned()).AddColumn(new TableColumn("fitted").RightAligned());
            foreach (var (model, counts, measurement) in rows)
                table.AddRow(Markup.Escape(model), Units.Count(counts.Macs), $"{measurement.Latency.MedianMs:0.000} ms", $"{fit.Profile.EstimateLatencyMs(counts):0.000} ms");
            context.Console.Write(table);
            context.Console.MarkupLine($"latency fit: RMSE {fit.LatencyRmseMs:0.000} ms, worst {fit.LatencyMaxRelativeError:P1}" +
                                       (fit.EnergyRmseJoules is { } e ? $"; energy fit: RMSE {e * 1000:0.000} mJ, worst {fit.EnergyMaxRelativeError:P1}" : "; no energy measured"));
            context.Console.MarkupLine($"wrote [bold]{Markup.Escape(parse.GetRequiredValue(output).FullName)}[/]: use it with measure --device {Markup.Escape(parse.GetRequiredValue(output).Name)}");
            return ExitCodes.Success;
        });
        return command;
    }
}
