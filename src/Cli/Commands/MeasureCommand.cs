using System.CommandLine;
using ParetoPrune.Devices;
using ParetoPrune.Devices.Meters;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune measure MODEL.onnx [--device local|pi4-estimate|PROFILE.json] [--meter SPEC]</c>: latency and energy
/// per inference, with how they were obtained.
/// </summary>
static class MeasureCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<FileInfo>("model") { Description = "ONNX model to measure" };
        var device = new Option<string>("--device") { Description = DeviceSpec.Help, DefaultValueFactory = _ => "pi4-estimate" };
        device.CompletionSources.Add(DeviceSpec.Suggested);
        var tokenFile = new Option<FileInfo?>("--token-file") { Description = "bearer token of the device agent, with --device http://…" };
        var meter = new Option<string?>("--meter") { Description = $"energy meter for --device local: {string.Join(", ", MeterSpec.AcceptedForms)} (default: RAPL when readable)" };
        var threads = new Option<int?>("--threads") { Description = "ONNX Runtime intra-op threads (default: ONNX Runtime's)" };
        var budget = new Option<double>("--measure-budget", "--budget") { Description = "seconds of timed runs at most", DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch-size") { Description = "images per run", DefaultValueFactory = _ => 1 };
        var retryWindow = DeviceSpec.RetryWindowOption();
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var command = new Command("measure", "Measure a model's latency (and energy, with a meter) on this machine, or estimate it for a device profile.")
        {
            model, device, tokenFile, meter, threads, budget, batch, retryWindow, json,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            var file = parse.GetRequiredValue(model);
            var onnx = OnnxModel.Load(file.FullName);
            InputChecks.FiniteWeights(onnx, file.FullName); // a model whose outputs are NaN has no latency worth reporting
            var cost = ModelCost.Analyze(onnx);
            int[] inputShape = cost.InputShape.Skip(1).Select(d => (int)d).ToArray();
            var plan = new MeasurementPlan
            {
                Threads = parse.GetValue(threads), TimeBudget = TimeSpan.FromSeconds(parse.GetValue(budget)), BatchSize = parse.GetValue(batch),
            };
            DeviceSpec.CheckRetryWindow(parse.GetValue(retryWindow), parse.GetValue(device));
            using var target = await DeviceSpec.OpenAsync(parse.GetValue(device)!, parse.GetValue(meter), parse.GetValue(tokenFile), cancellation, parse.GetValue(retryWindow));
            var measurement = await target.AsDevice().MeasureAsync(OnnxModel.ToBytes(onnx), inputShape, plan, cancellation);
            string? energyNote = target.EnergyNote;
            if (energyNote is not null && measurement.Energy is null) measurement = measurement with { EnergyUnavailableReason = energyNote };

            // An estimate says how far off it may be: the profile's 90 % intervals.
            var latencyInterval = target.Profile?.LatencyInterval(measurement.Latency.MedianMs);
            var energyInterval = measurement.Energy is { } estimatedEnergy ? target.Profile?.EnergyInterval(estimatedEnergy.JoulesPerInference * 1000) : null;
            if (parse.GetValue(json))
            {
                Json.Write(context.Output, new
                {
                    model = file.FullName, measurement, provenance = measurement.Provenance.Description,
                    latencyInterval = latencyInterval is { } li ? new ValueInterval(li.Low, li.High) : null,
                    energyInterval = energyInterval is { } ei ? new ValueInterval(ei.Low, ei.High) : null,
                });
                return ExitCodes.Success;
            }
            var l = measurement.Latency;
            var table = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn(new TableColumn("value").RightAligned());
            table.AddRow("latency, median", $"{l.MedianMs:0.000} ms");
            if (latencyInterval is { } range) table.AddRow("90 % interval (profile's fit)", $"{range.Low:0.000} – {range.High:0.000} ms");
            if (l.Runs > 0)
            {
                table.AddRow("95 % CI of the median", $"{l.MedianCiLowerMs:0.000} – {l.MedianCiUpperMs:0.000} ms ({l.RelativeCiWidth:P1})");
                table.AddRow("p10 / p90", $"{l.P10Ms:0.000} / {l.P90Ms:0.000} ms");
                table.AddRow("mean ± std", $"{l.MeanMs:0.000} ± {l.StdMs:0.000} ms");
                table.AddRow("runs", l.Runs.ToString("N0"));
            }
            table.AddRow("throughput", $"{measurement.InferencesPerSecond:0.0} inferences/s");
            if (measurement.Energy is { } e)
            {
                table.AddRow("energy per inference", $"{e.JoulesPerInference * 1000:0.000} mJ");
                if (energyInterval is { } er) table.AddRow("90 % interval (profile's fit)", $"{er.Low:0.000} – {er.High:0.000} mJ");
                if (e.DynamicJoulesPerInference is { } d) table.AddRow("  above idle", $"{d * 1000:0.000} mJ");
                table.AddRow("power, average / idle", $"{e.AverageWatts:0.00} W / {(e.IdleWatts is { } i ? $"{i:0.00} W" : "—")}");
                if (e.PowerSamples is { } s) table.AddRow("power samples, window", $"{s} in {e.Window?.TotalSeconds:0.0} s");
            }
            else table.AddRow("energy", $"[grey]not available: {Markup.Escape(measurement.EnergyUnavailableReason ?? "")}[/]");
            context.Console.Write(table);
            context.Console.MarkupLine($"[grey]{Markup.Escape(measurement.Provenance.Description)}[/]");
            return ExitCodes.Success;
        });
        return command;
    }
}
