using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;
using static System.Globalization.CultureInfo;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Searches as a user runs them, in processes of their own, under a oneDNN kernel made wrong by the test switch
/// (<see cref="KernelFault"/>): whatever this machine's own oneDNN does, a search under a faulty NCHW kernel must export the
/// models a search on ATen alone exports. And a search that produces nothing says why, with a non-zero exit.
/// </summary>
public sealed class KernelFaultTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("kernel-fault-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    /// <summary>Six random configurations of the shipped SimpleCnn, every one promoted and exported (so which are exported does
    /// not hang on a tie), with a few fine-tuning steps in each stage; no uniform baseline beside them.</summary>
    string[] Search(string model, string run, params string[] extra) =>
        ["search", model, "-o", run, "-n", "6", "--sampler", "random", "--data", "fashion-mnist-sample", "--validation-limit", "200",
         "--recalibration-batches", "2", "--batch-size", "32", "--screening-steps", "4", "--promote", "6", "--promotion-steps", "4",
         "--final", "6", "--final-max-steps-per-epoch", "4", "--threads", "2", "--objectives", "accuracy,macs", "--constraint", "macs<=0.7*baseline",
         "--uniform-baseline", "false", .. extra];

    sealed record Exported(int Trial, string Kept, double Validation, double Test, float[] Logits, string Kernels);

    IReadOnlyList<Exported> Run(string name, string model, Dictionary<string, string?> environment) => Run(name, model, environment, out _);

    IReadOnlyList<Exported> Run(string name, string model, Dictionary<string, string?> environment, out string output)
    {
        string run = Path.Combine(directory, name);
        var result = CliRunner.RunProcess(environment, Search(model, run));
        Assert.True(result.ExitCode == 0, $"{name}: exit {result.ExitCode}: {result.Error}");
        output = result.Output;
        var table = Csv.Read(Path.Combine(run, "trials.csv"));
        int Column(string header) => table[0].ToList().IndexOf(header);
        var test = DatasetCatalog.LoadEmbeddedSample().Test;
        float[] input = Enumerable.Range(0, 16).SelectMany(i => test.Image(i * 37).ToArray()).ToArray();
        return table.Skip(1).Select(r =>
        {
            string path = Path.Combine(run, r[Column("model")]);
            using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(path);
            return new Exported(int.Parse(r[Column("trial")]), r[Column("kept")], double.Parse(r[Column("accuracy_final")], InvariantCulture),
                                double.Parse(r[Column("accuracy_test")], InvariantCulture), Logits(session, input),
                                OnnxModel.Load(path).MetadataProps.Single(p => p.Key == "paretoprune.kernels").Value);
        }).ToList();
    }

    static float[] Logits(Microsoft.ML.OnnxRuntime.InferenceSession session, float[] pixels)
    {
        var tensor = new Microsoft.ML.OnnxRuntime.Tensors.DenseTensor<float>(pixels, [pixels.Length / 784, 1, 28, 28]);
        using var outputs = session.Run([Microsoft.ML.OnnxRuntime.NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), tensor)]);
        return outputs.First().AsEnumerable<float>().ToArray();
    }

    [Fact]
    public void UnderAFaultyNativeKernelASearchExportsWhatASearchOnATenExports()
    {
        string model = CliRunner.ShippedModel(directory);
        var aten = Run("aten", model, new() { ["PARETOPRUNE_ONEDNN"] = "off" });
        Assert.Equal(6, aten.Count);
        Assert.All(aten, e => Assert.StartsWith("ATen for", e.Kernels));

        // The fault the kernel check sees: the check keeps NCHW oneDNN out; the fault the check misses, as NaN: the guard
        // re-runs the steps on ATen, marks the kernel, and the trial goes on. Either way, the same models as on ATen.
        foreach (string fault in new[] { "native", "native:nan:unchecked" })
        {
            // NCHW oneDNN asked for by name: which layout the process would choose depends on timing (a loaded machine can
            // time channels-last faster, and the faulty kernel would then never be met).
            var faulty = Run(fault.Replace(':', '-'), model, new() { [KernelFault.Variable] = fault, ["PARETOPRUNE_ONEDNN"] = "native" }, out string output);
            Assert.Matches(@"kernel checks: \d+ convolution signatures checked against ATen in [\d.]+ s; [1-9]\d* oneDNN kernels found wrong here",
                           System.Text.RegularExpressions.Regex.Replace(output, @"\s+", " ")); // the console wraps long lines
            Assert.Equal(aten.Select(e => (e.Trial, e.Kept)), faulty.Select(e => (e.Trial, e.Kept)));
            foreach (var (a, f) in aten.Zip(faulty))
            {
                Assert.Equal(a.Validation, f.Validation, 0.011); // at most two of 200 images, from float32 rounding in training
                Assert.Equal(a.Test, f.Test, 0.011);
                Assert.Equal(a.Logits.Length, f.Logits.Length);
                Assert.True(a.Logits.Zip(f.Logits).Max(p => Math.Abs(p.First - p.Second)) < 0.05,
                            $"{fault}, trial {a.Trial}: logits differ from ATen's by {a.Logits.Zip(f.Logits).Max(p => Math.Abs(p.First - p.Second))}");
                Assert.DoesNotContain("oneDNN NCHW", f.Kernels);
            }
            if (fault.Contains("unchecked"))
                Assert.Contains("kernel fault: on oneDNN", File.ReadAllText(Path.Combine(directory, fault.Replace(':', '-'), "trials.csv")));
        }

        // The comparison can fail: a wrong kernel that neither the check nor the guard can see trains other models.
        var unseen = Run("unseen", model, new() { [KernelFault.Variable] = "native:unchecked", ["PARETOPRUNE_ONEDNN"] = "native" });
        Assert.Contains(aten.Zip(unseen), p => Math.Abs(p.First.Validation - p.Second.Validation) > 0.1);
    }

    [Fact]
    public async Task ASearchInWhichEveryTrialFailsExitsThreeWithTheReasonsCounted()
    {
        string model = CliRunner.ShippedModel(directory), run = Path.Combine(directory, "diverging");
        var (code, output, error) = await CliRunner.RunAsync(Search(model, run, "--lr", "1e9"));
        Assert.Equal(3, code);
        string line = error.Split('\n').Single(l => l.StartsWith("no model reached the final stage", StringComparison.Ordinal));
        Assert.Contains("6 of 6 trials failed: the loss became NaN (6)", line);
        Assert.Contains("lower learning rate", line);
        Assert.Contains(Path.Combine(run, "trials.csv"), line);
        Assert.Contains("6 failed", output + error);
    }

    [Fact]
    public async Task ACompareInWhichEveryPointFailsExitsThreeWithTheReasonsCounted()
    {
        string model = CliRunner.ShippedModel(directory), run = Path.Combine(directory, "compare");
        var (code, _, error) = await CliRunner.RunAsync("compare", model, "--data", "fashion-mnist-sample", "--methods", "l1,magnitude-global", "--amounts", "0.3,0.5",
                                                        "--finetune-epochs", "1", "--max-steps-per-epoch", "4", "--lr", "1e9", "--recalibration-batches", "1",
                                                        "--batch-size", "32", "--validation-limit", "100", "--threads", "2", "--out", run);
        Assert.Equal(3, code);
        string line = error.Split('\n').Single(l => l.StartsWith("4 of 4 points failed", StringComparison.Ordinal));
        Assert.Contains("the loss became NaN (4)", line);
        Assert.Contains(Path.Combine(run, "points.csv"), line);
    }
}
