using System.Globalization;
using ParetoPrune.Devices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>paretoprune-bench pi-profile MODELS_DIR [bench/pi4b-profile/measurements.csv]</c>: fits the Raspberry Pi 4B profile to
/// the published latencies in the CSV (its rows with fit = yes), counting each model as ParetoPrune counts the models it
/// estimates (the ONNX exports of tools/pi-profile/export_reference_models.py), and prints the fit, each model's error
/// and its leave-one-out error (the error for a model the profile was not fitted to).
/// </summary>
static class PiProfileFit
{
    public static void Run(string modelsDirectory, string csv)
    {
        var rows = ReadCsv(csv);
        var counted = new Dictionary<string, ModelCounts>();
        ModelCounts Counts(string onnx)
        {
            if (counted.TryGetValue(onnx, out var c)) return c;
            var model = OnnxModel.Load(Path.Combine(modelsDirectory, onnx + ".onnx"));
            return counted[onnx] = DeviceCounts.Of(model, ModelCost.Analyze(model));
        }
        var fitted = rows.Where(r => r["fit"] == "yes").ToList();
        var samples = fitted.Select(r => (Counts(r["onnx"]), double.Parse(r["latency_ms"], CultureInfo.InvariantCulture), (double?)null)).ToList();
        var fit = ProfileCalibration.Fit(samples, "raspberry-pi-4b", "Raspberry Pi 4B", source: csv);
        var p = fit.Profile;
        Console.WriteLine($"fit to {fit.Samples} published latencies: {p.FixedMs:0.00} ms + {p.MsPerGmac:0.0} ms/GMAC + {p.MsPerMegabyte:0.000} ms/MB + {p.MsPerLayer:0.000} ms/operator; " +
                          $"RMSE {fit.LatencyRmseMs:0.0} ms, largest error {fit.LatencyMaxRelativeError:P0}; 90 % interval ×/÷ {fit.LatencyErrorFactor:0.00}");
        Console.WriteLine();
        Console.WriteLine("| model | runtime | GMAC | weights MB | operators | measured ms | fitted ms | error | left out ms | left-out error |");
        Console.WriteLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for (int i = 0; i < fitted.Count; i++)
        {
            var (counts, (measured, fittedMs, leftOut)) = (samples[i].Item1, fit.PerModel[i]);
            Console.WriteLine($"| {fitted[i]["model"]} | {fitted[i]["runtime"]} | {counts.Macs / 1e9:0.000} | {counts.WeightBytes / 1e6:0.0} | {counts.Layers} | {measured:0.0} | " +
                              $"{fittedMs:0.0} | {(fittedMs - measured) / measured:+0%;-0%} | {leftOut:0.0} | {(leftOut - measured) / measured:+0%;-0%} |");
        }
        Console.WriteLine();
        Console.WriteLine("Not in the fit (another regime), predicted by it:");
        foreach (var r in rows.Where(r => r["fit"] != "yes"))
        {
            var counts = Counts(r["onnx"]);
            Console.WriteLine($"- {r["model"]}, {r["runtime"]}, {r["threads"]} thread(s): measured {r["latency_ms"]} ms, profile {p.EstimateLatencyMs(counts):0.0} ms ({r["fit"]})");
        }
        Console.WriteLine();
        Console.WriteLine(p.ToJson());
    }

    /// <summary>The CSV's rows as header → field (the project's reader: quoted fields with commas inside).</summary>
    static List<Dictionary<string, string>> ReadCsv(string path)
    {
        var records = Optimizer.Reporting.Csv.Read(path);
        return records.Skip(1).Select(r => records[0].Zip(r).ToDictionary(p => p.First, p => p.Second)).ToList();
    }
}
