using System.Diagnostics;
using System.Text.Json;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Several worker processes on one study on a real PostgreSQL server (<see cref="PostgresServer"/>): <c>search --storage</c>
/// creates it, <c>worker</c> processes join it, one is killed with SIGKILL in the middle of a trial, and the study still
/// ends with every task done once (the killed worker's re-run by another) and the same trials and values as a study run
/// by a single worker.
/// </summary>
public sealed class WorkerTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("workers-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>Trials of a second or two each on the tiny model, so that a worker can be caught in one.</summary>
    static string[] Search(string model, string url, string study, string run) =>
        ["search", model, "-o", run, "-n", "6", "--sampler", "bo", "--data", "fashion-mnist-sample", "--validation-limit", "200",
         "--recalibration-batches", "2", "--batch-size", "32", "--threads", "1", "--screening-steps", "150", "--promote", "3", "--promotion-steps", "100",
         "--final", "2", "--final-max-steps-per-epoch", "100", "--parallel", "3", "--storage", url, "--study", study];

    [FactWithPostgres]
    public async Task ThreeWorkersOneKilledMidTrialGiveTheSingleWorkersStudy()
    {
        string url = PostgresServer.Shared.NewDatabase();
        var storage = StudyStorage.Parse(url);
        string model = CliRunner.TinyModel(directory);

        // The creator trains with ATen's kernels; the workers, left to themselves, would time the kernels and may choose others.
        // They take the study's instead (ATen needs no check).
        using var creator = CliRunner.Start(new Dictionary<string, string?> { ["PARETOPRUNE_ONEDNN"] = "off" }, Search(model, url, "shared", Path.Combine(directory, "a")));
        CliRunner.WaitFor(creator, "screening 0/"); // the study exists
        using var watching = StudyStore.Join(storage, "shared");
        string creatorPrefix = $"{Environment.MachineName}:{creator.Id}:";
        bool Holds(string prefix) => watching.Backend.Tasks().Any(t => !t.Done && t.Worker?.StartsWith(prefix, StringComparison.Ordinal) == true);

        // The victim must be caught holding a task it has not finished. Left to race, the creator (three trials at once)
        // can finish the trials while the victim is still starting, and the victim is never caught in one. So the
        // creator is paused (SIGSTOP) once it holds a task, while the victim starts and claims one of those left; paused
        // for well under the heartbeat timeout (30 s), it is not taken for dead and keeps its tasks.
        var deadline = Stopwatch.StartNew();
        while (!Holds(creatorPrefix) && deadline.Elapsed < TimeSpan.FromMinutes(1)) Thread.Sleep(20);
        Assert.Equal(0, CliRunner.Signal(creator.Id, 19));
        Process victim;
        Task<string> victimOutput;
        string victimPrefix;
        try
        {
            victim = CliRunner.Start("worker", "--storage", url, "--study", "shared", "-o", Path.Combine(directory, "c"));
            victimOutput = victim.StandardOutput.ReadToEndAsync();
            victimPrefix = $"{Environment.MachineName}:{victim.Id}:";
            var paused = Stopwatch.StartNew();
            while (!Holds(victimPrefix) && paused.Elapsed < TimeSpan.FromSeconds(20) && !victim.HasExited) Thread.Sleep(20);
            log.WriteLine($"creator paused {paused.Elapsed.TotalSeconds:0.0} s while the victim started");
        }
        finally
        {
            Assert.Equal(0, CliRunner.Signal(creator.Id, 18)); // SIGCONT
        }
        using var victimProcess = victim;
        // Should the victim still be starting (a loaded machine), it is watched on with the creator running.
        while (!Holds(victimPrefix))
        {
            if (victim.HasExited) Assert.Fail("the victim worker ended before it was caught in a task: " + await victimOutput);
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(3), "the victim worker claimed no task in 3 minutes");
            Thread.Sleep(20);
        }
        // One worker runs two trials at once: each still trains with the study's one thread.
        using var second = CliRunner.Start("worker", "--storage", url, "--study", "shared", "-o", Path.Combine(directory, "b"), "--workers", "2");
        var outputs = new[] { creator, second }.Select(p => p.StandardOutput.ReadToEndAsync()).ToArray();
        Assert.Equal(0, CliRunner.Signal(victim.Id, 9));
        Assert.True(victim.WaitForExit(30_000));

        foreach (var (process, output) in new[] { (creator, outputs[0]), (second, outputs[1]) })
        {
            Assert.True(process.WaitForExit(300_000), "a worker did not finish in 5 minutes");
            log.WriteLine(await output);
            Assert.Equal(0, process.ExitCode);
        }
        // A joining worker says what it does, not that it evaluates the unpruned model the creator already did.
        Assert.Contains("claiming trials", await outputs[1]);
        Assert.DoesNotContain("evaluating the unpruned model", await outputs[1]);

        using var shared = StudyStore.Join(storage, "shared");
        var trials = shared.Trials();
        var tasks = shared.Backend.Tasks();
        Assert.Equal(Enumerable.Range(0, 6), trials.Select(t => t.Number));
        Assert.All(trials, t => Assert.True(t.State == TrialState.Complete, $"trial {t.Number}: {t.State} {t.Error}"));
        // Every task done exactly once: by its first owner, or, if that was the victim, re-run by another worker.
        Assert.All(tasks, t => Assert.True(t.Done, $"{t.Stage} of trial {t.Trial} is not done"));
        var reclaimed = tasks.Where(t => t.Attempts > 1).ToList();
        Assert.NotEmpty(reclaimed);
        Assert.All(reclaimed, t => Assert.Equal(2, t.Attempts));
        Assert.All(tasks, t => Assert.False(t.CompletedBy!.StartsWith(victimPrefix, StringComparison.Ordinal), "the killed worker completed a task"));
        Assert.True(tasks.Select(t => t.CompletedBy).Distinct().Count() >= 2, "the work was not shared between the surviving workers");
        Assert.True(shared.Backend.Workers().Single(w => w.Id.StartsWith(victimPrefix, StringComparison.Ordinal)).Retired);
        Assert.Equal(StudyStatus.Finished, shared.Status);

        // Every worker trained with the study's kernels.
        string kernels = shared.Definition.Kernels!;
        Assert.Equal("off", kernels);
        Assert.Contains("kernels: oneDNN off (the study's kernels", outputs[1].Result);

        // The same study run by one worker (the same parallelism and kernels) has the same trials, stage by stage.
        using var aloneProcess = CliRunner.Start(new Dictionary<string, string?> { ["PARETOPRUNE_ONEDNN"] = kernels }, [.. Search(model, url, "single", Path.Combine(directory, "single")), "--json"]);
        var single = (Output: await aloneProcess.StandardOutput.ReadToEndAsync(), Exited: aloneProcess.WaitForExit(600_000));
        Assert.True(single.Exited && aloneProcess.ExitCode == 0, single.Output);
        using var alone = StudyStore.Join(storage, "single");
        var expected = alone.Trials();
        Assert.Equal(expected.Count, trials.Count);
        foreach (var (one, many) in expected.Zip(trials))
        {
            Assert.Equal(one.Kept, many.Kept);
            Assert.Equal(one.Stages.Select(s => s.Stage), many.Stages.Select(s => s.Stage));
            foreach (var (a, b) in one.Stages.Zip(many.Stages))
                Assert.Equal(JsonSerializer.Serialize(a.Values), JsonSerializer.Serialize(b.Values));
        }
        // Each worker's run directory holds the exported front, whichever machine exported it.
        var front = JsonDocument.Parse(single.Output).RootElement.GetProperty("front").EnumerateArray().Select(c => c.GetProperty("trial").GetInt32()).ToList();
        foreach (string run in new[] { "a", "b" })
            Assert.All(front, trial => Assert.True(File.Exists(Path.Combine(directory, run, "models", $"trial-{trial}.onnx")), $"{run} lacks trial {trial}'s model"));
    }
}
