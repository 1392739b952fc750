using System.CommandLine;
using System.Globalization;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune demo</c>: the search on the embedded default, no downloads.</summary>
static partial class SearchCommands
{
    public static Command Demo(CliContext context)
    {
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "run directory (replaced if it holds an earlier demo)", DefaultValueFactory = _ => new DirectoryInfo("demo-run") };
        var trials = new Option<int>("--trials", "-n") { Description = "configurations to screen", DefaultValueFactory = _ => 30 };
        var json = new Option<bool>("--json") { Description = "print a JSON summary for scripts" };
        var command = new Command("demo",
            "The embedded default: search the shipped SimpleCnn on the embedded Fashion-MNIST sample for accuracy, MACs, Raspberry Pi 4B energy " +
            "(estimated, labelled so) and latency on this machine; writes plots and report.html. A few minutes on 2 cores.")
        { output, trials, json };
        command.SetAction(async (parse, _) =>
        {
            var directory = parse.GetValue(output)!;
            if (File.Exists(Path.Combine(directory.FullName, PruningSearch.StudyFile)))
            {
                // On stderr: with --json, stdout is the JSON summary alone.
                context.Error.WriteLine($"replacing the earlier demo in {directory.FullName}");
                directory.Delete(recursive: true);
            }
            Directory.CreateDirectory(directory.FullName);
            string modelPath = Path.Combine(directory.FullName, "simplecnn-fashion-mnist.onnx");
            await using (var resource = typeof(SearchCommands).Assembly.GetManifestResourceStream("simplecnn-fashion-mnist.onnx")
                         ?? throw new InvalidOperationException("the shipped model is not embedded in this build"))
            await using (var file = File.Create(modelPath))
                await resource.CopyToAsync(file);

            // The demo is a search command line with fixed values: one code path for both.
            string[] args =
            [
                "search", "--model", modelPath, "--data", "fashion-mnist-sample", "--objectives", "accuracy,macs,energy,latency",
                "--constraint", "accuracy>=baseline-0.03", "--constraint", "macs<=0.6*baseline",
                "--device", "pi4-estimate", "--latency-device", "local", "--measure-budget", "0.5",
                "--trials", parse.GetValue(trials).ToString(CultureInfo.InvariantCulture), "--sampler", "bo",
                "--recalibration-batches", "10", "--screening-steps", "20", "--promote", "12", "--promotion-steps", "50",
                "--final", "8", "--final-epochs", "1", "--final-max-steps-per-epoch", "300",
                "--out", directory.FullName, .. parse.GetValue(json) ? new[] { "--json" } : [],
            ];
            var (inner, o) = ParseSearch(args) ?? throw new InvalidOperationException("the demo's own command line is invalid");
            return await RunSearchAsync(context, inner, o, modelPath, directory.FullName);
        });
        return command;
    }
}
