using System.Text.Json;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// oneDNN capped at narrower instruction sets (AVX2, SSE4.1): checked in processes of their own, because oneDNN fixes
/// its instruction set when its first kernel runs; applied in later processes. oneDNN's verbose log names the
/// instruction set it really dispatched to. Alone: the check switches libtorch's process-wide kernel flag.
/// </summary>
[Collection(nameof(KernelFlagCollection))]
public sealed class KernelCheckTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("kernel-check-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static readonly Objectives.Onnx.Proto.ModelProto Tiny = Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3);

    static string Isa(string verboseOutput) =>
        verboseOutput.Split('\n').FirstOrDefault(l => l.Contains(",info,cpu,isa:"))?.Split("isa:")[1].Trim() ?? "(no oneDNN kernel ran)";

    [Fact]
    public void ACappedModeIsCheckedInAProcessOfItsOwnUnderItsCap()
    {
        string models = Directory.CreateDirectory(Path.Combine(directory, "models")).FullName;
        OnnxModel.Save(Tiny, Path.Combine(models, "compared-000.onnx"));
        OnnxModel.Save(Tiny, Path.Combine(models, "timed-000.onnx"));
        string result = Path.Combine(directory, "result.json");
        var run = CliRunner.RunProcess(new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = "SSE41", ["ONEDNN_VERBOSE"] = "1" },
                                       "kernel-check", "--mode", "sse41", "--threads", "2", "--models", models, "--result", result);
        Assert.True(run.ExitCode == 0, run.Error);
        Assert.Equal("Intel SSE4.1", Isa(run.Output)); // the kernels checked were really the capped ones
        var checks = JsonSerializer.Deserialize<List<KernelCheck>>(File.ReadAllText(result))!;
        Assert.Equal([KernelMode.Off, KernelMode.Sse41], checks.Select(c => c.Mode));
        Assert.Equal(0, checks[0].MaxRelativeError);
        Assert.True(double.IsFinite(checks[1].MaxRelativeError));
        Assert.Equal(checks[1].MaxRelativeError <= KernelSelection.Tolerance, checks[1].Correct);
        Assert.All(checks, c => Assert.True(c.ImagesPerSecond > 0 && c.UnalignedImagesPerSecond > 0));

        // Without the cap in its environment the process cannot check the capped kernels, and says so.
        var uncapped = CliRunner.RunProcess(new Dictionary<string, string?> { ["ONEDNN_MAX_CPU_ISA"] = null },
                                            "kernel-check", "--mode", "sse41", "--models", models, "--result", result);
        Assert.NotEqual(0, uncapped.ExitCode);
        Assert.Contains("ONEDNN_MAX_CPU_ISA=SSE41", uncapped.Error);
    }

    [Fact]
    public void TheDecisionWeighsCappedModesCheckedByTheHostAndNeverOneThatFailed()
    {
        var host = KernelSelection.CheckHost;
        try
        {
            KernelSelection.CheckHost = ["dotnet", Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"), "kernel-check"];
            string cache = Path.Combine(directory, "kernels.json");
            var decision = KernelSelection.Decide([Tiny], 2, cache, checkCaps: true);
            var caps = KernelSelection.CappedModes();
            Assert.NotEmpty(caps); // an x64 CPU with AVX2 at least
            foreach (var cap in caps)
            {
                var check = Assert.Single(decision.Checks, c => c.Mode == cap);
                Assert.True(check.Problem is null, check.Problem);
                Assert.True(check.ImagesPerSecond > 0 && double.IsFinite(check.MaxRelativeError));
                Assert.Equal(check.MaxRelativeError <= KernelSelection.Tolerance, check.Correct);
            }
            Assert.Equal(KernelSelection.Choose(decision.Checks), decision.Mode);
            Assert.True(KernelSelection.Decide([Tiny], 2, cache, checkCaps: true).FromCache);

            // A host that fails leaves its modes unchecked: recorded with the reason, never chosen, never cached as right.
            KernelSelection.CheckHost = ["false"];
            var failed = KernelSelection.Decide([Tiny], 2, Path.Combine(directory, "other.json"), checkCaps: true);
            foreach (var cap in caps)
            {
                var check = Assert.Single(failed.Checks, c => c.Mode == cap);
                Assert.False(check.Correct);
                Assert.Contains("exited with 1", check.Problem);
                Assert.NotEqual(cap, failed.Mode);
                Assert.Contains($"{cap.Name()} unchecked (its check process exited with 1", failed.Reason);
            }
            Assert.True(KernelSelection.Decide([Tiny], 2, Path.Combine(directory, "other.json"), checkCaps: true).FromCache); // infinite errors survive the cache

            // Without a host, capped modes are not checked and the decision says so where they would have been.
            KernelSelection.CheckHost = null;
            var none = KernelSelection.Decide([Tiny], 2, Path.Combine(directory, "none.json"), checkCaps: true);
            Assert.DoesNotContain(none.Checks, c => c.Mode.Cap() is not null);
            Assert.Contains("not checked: no check host", none.Reason);
        }
        finally
        {
            KernelSelection.CheckHost = host;
        }
    }

    [Fact]
    public void ACappedModeTrainsWithTheCappedKernelsAndTheModelRecordsIt()
    {
        string model = Path.Combine(directory, "capped.onnx");
        var run = CliRunner.RunProcess(new Dictionary<string, string?> { ["PARETOPRUNE_ONEDNN"] = "avx2", ["ONEDNN_VERBOSE"] = "1", ["ONEDNN_MAX_CPU_ISA"] = null },
                                       "train", "--arch", "simplecnn", "--out", model, "--data", "fashion-mnist-sample", "--epochs", "1",
                                       "--max-steps-per-epoch", "2", "--batch-size", "32", "--validation", "0.05", "--threads", "2");
        Assert.True(run.ExitCode == 0, run.Error);
        // The cap was set after libtorch loaded, before oneDNN's first kernel: in time.
        Assert.Equal("Intel AVX2", Isa(run.Output));
        string recorded = OnnxModel.Load(model).MetadataProps.Single(p => p.Key == "paretoprune.kernels").Value;
        Assert.StartsWith("oneDNN ", recorded); // NCHW or channels-last, by convolution shape, each checked under the cap
        Assert.Matches(@"each checked against ATen on this machine \(largest relative error \d\.\de[+-]\d+\); oneDNN capped at AVX2; chosen: oneDNN avx2", recorded);
    }
}

[CollectionDefinition(nameof(KernelFlagCollection), DisableParallelization = true)]
public sealed class KernelFlagCollection;
