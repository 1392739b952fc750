using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Every command that reads a study works on one on a real PostgreSQL server as on a run directory, named the same way
/// (<c>--storage URL --study NAME</c>): <c>studies list</c>, <c>report</c>, <c>export</c>, <c>search --resume</c> and the
/// dashboard, beside a local study.
/// </summary>
public sealed class SharedStudyCommandsTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("shared-study-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [FactWithPostgres]
    public async Task EveryStudyCommandWorksOnAStudyOnTheServer()
    {
        string url = PostgresServer.Shared.NewDatabase();
        var storage = StudyStorage.Parse(url);
        string model = CliRunner.TinyModel(directory);
        var created = await CliRunner.RunAsync(["search", model, "-o", Path.Combine(directory, "first"), "-n", "3", "--storage", url, "--study", "s2",
                                                "--objectives", "accuracy,macs", .. CliRunner.SearchBudget]);
        Assert.True(created.ExitCode == 0, created.Error);

        // studies list: the server's studies, with their state and progress.
        var listed = await CliRunner.RunAsync("studies", "list", "--storage", url, "--json");
        Assert.True(listed.ExitCode == 0, listed.Error);
        var study = Assert.Single(JsonDocument.Parse(listed.Output).RootElement.EnumerateArray());
        Assert.Equal(("s2", "finished", 3, 3), (study.GetProperty("study").GetString(), study.GetProperty("status").GetString(),
                                                study.GetProperty("trials").GetInt32(), study.GetProperty("budget").GetInt32()));

        // report: written to --out, with the models read out of the store.
        string reported = Path.Combine(directory, "report-here");
        var report = await CliRunner.RunAsync("report", "--storage", url, "--study", "s2", "--out", reported, "--json");
        Assert.True(report.ExitCode == 0, report.Error);
        Assert.True(File.Exists(Path.Combine(reported, "report.html")));
        using (var store = StudyStore.Join(storage, "s2"))
        {
            var final = store.Trials().Select(t => t.At(SearchStage.Final)).Where(f => f?.ModelPath is not null).ToList();
            Assert.NotEmpty(final);
            foreach (var f in final)
                Assert.Equal(store.Backend.GetArtifact(f!.ModelPath!.Replace('\\', '/')), File.ReadAllBytes(Path.Combine(reported, f.ModelPath!)));
        }

        // export: the chosen model copied out of the shared store.
        string exported = Path.Combine(directory, "best.onnx");
        var export = await CliRunner.RunAsync("export", "--storage", url, "--study", "s2", "--out", exported, "--json");
        Assert.True(export.ExitCode == 0, export.Error);
        int trial = JsonDocument.Parse(export.Output).RootElement.GetProperty("trial").GetInt32();
        using (var store = StudyStore.Join(storage, "s2"))
        {
            string path = store.Trials().Single(t => t.Number == trial).At(SearchStage.Final)!.ModelPath!;
            Assert.Equal(store.Backend.GetArtifact(path.Replace('\\', '/')), File.ReadAllBytes(exported));
        }

        // A shared study that has not finished says how to continue it: on its server, not in a folder it never had.
        using (var store = StudyStore.Join(storage, "s2")) store.Status = StudyStatus.Stopped;
        var stopped = await CliRunner.RunAsync("report", "--storage", url, "--study", "s2", "--out", reported);
        Assert.True(stopped.ExitCode == 0, stopped.Error);
        Assert.Contains($"paretoprune search --resume --storage {storage.Location} --study s2", string.Join(" ", stopped.Output.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        Assert.DoesNotContain("--resume --out", stopped.Output);

        // How this process runs (--threads, --retry-window) is its own, not the study's: it reaches the search. Here the
        // study estimates (pi4-estimate), so a retry window has no agent to apply to, and is refused rather than ignored.
        foreach (var command in new[] { new[] { "worker", "--storage", url, "--study", "s2" }, ["search", "--resume", "--storage", url, "--study", "s2"] })
        {
            var refused = await CliRunner.RunAsync([.. command, "--retry-window", "5", "-o", Path.Combine(directory, "retry")]);
            Assert.True(refused.ExitCode == 2, $"{command[0]}: exit {refused.ExitCode}: {refused.Error}");
            Assert.Contains("--retry-window applies to a device agent", refused.Error);
        }

        // search --resume: the study continues from its own settings, here with a larger budget.
        var resumed = await CliRunner.RunAsync("search", "--resume", "--storage", url, "--study", "s2", "--trials", "4", "-o", Path.Combine(directory, "second"));
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        using (var store = StudyStore.Join(storage, "s2"))
        {
            Assert.Equal(4, store.Trials().Count);
            Assert.Equal(StudyStatus.Finished, store.Status);
        }

        // The dashboard shows the shared study beside a local one, through the same snapshot.
        string local = Path.Combine(directory, "local");
        Assert.Equal(0, (await CliRunner.RunAsync(["search", model, "-o", local, "-n", "2", "--objectives", "accuracy,macs", .. CliRunner.SearchBudget])).ExitCode);
        using var dashboard = CliRunner.Start("dashboard", local, "--storage", url, "--study", "s2", "--listen", "127.0.0.1:0");
        try
        {
            string? line;
            while ((line = dashboard.StandardOutput.ReadLine()) is not null && !line.Contains("dashboard: ")) { }
            var address = new Uri(Regex.Match(line ?? "", @"http://\S+").Value);
            using var http = new HttpClient { BaseAddress = address };
            var snapshots = await http.GetFromJsonAsync<JsonElement>("api/studies");
            var shown = snapshots.EnumerateArray().Select(s => (Name: s.GetProperty("name").GetString(), Status: s.GetProperty("status").GetString(),
                                                                Trials: s.GetProperty("trials").GetInt32(), Problem: s.GetProperty("problem").GetString())).ToList();
            Assert.Equal([("local", "finished", 2, null), ("s2", "finished", 4, null)], shown);
            var shared = snapshots.EnumerateArray().Last();
            Assert.Equal(4, shared.GetProperty("hypervolume").GetArrayLength());
            Assert.Contains(shared.GetProperty("points").EnumerateArray(), p => p.GetProperty("exported").GetBoolean());
        }
        finally
        {
            if (!dashboard.HasExited) dashboard.Kill(true);
            dashboard.WaitForExit(10_000);
        }

        // Named half-way, or not at all: one line saying what is missing.
        var half = await CliRunner.RunAsync("report", "--study", "s2");
        Assert.Equal(2, half.ExitCode);
        Assert.Contains("--storage", half.Error);
        var missing = await CliRunner.RunAsync("export", "--storage", url, "--study", "nope", "--out", Path.Combine(directory, "x.onnx"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nope", missing.Error);
    }

    [FactWithPostgres]
    public async Task AStudyOnTheServerStoppedByCtrlCResumesFromWhatTheToolPrinted()
    {
        string url = PostgresServer.Shared.NewDatabase();
        var storage = StudyStorage.Parse(url);
        string model = CliRunner.TinyModel(directory);
        using var search = CliRunner.Start(["search", model, "-o", Path.Combine(directory, "first"), "-n", "30", "--sampler", "random",
                                            "--storage", url, "--study", "stopped", .. CliRunner.SearchBudget]);
        CliRunner.WaitFor(search, "trial 1:");
        Assert.Equal(0, CliRunner.Signal(search.Id, 2)); // SIGINT, as Ctrl-C sends
        string rest = await search.StandardOutput.ReadToEndAsync();
        Assert.True(search.WaitForExit(60_000), "the search did not stop within a minute of Ctrl-C");
        Assert.True(search.ExitCode == 130, rest);
        string resume = $"paretoprune search --resume --storage {storage.Location} --study stopped";
        Assert.Contains(resume, string.Join(" ", rest.Split((char[])[' ', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)), StringComparison.Ordinal);
        int before;
        using (var store = StudyStore.Join(storage, "stopped"))
        {
            Assert.Equal(StudyStatus.Stopped, store.Status);
            before = store.Trials().Count;
            Assert.InRange(before, 2, 29);
        }

        // The printed command, run elsewhere, continues it to the end from the server alone.
        var resumed = await CliRunner.RunAsync([.. resume.Split(' ').Skip(1), "-o", Path.Combine(directory, "elsewhere"), "--json"]);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        using (var store = StudyStore.Join(storage, "stopped"))
        {
            Assert.Equal(StudyStatus.Finished, store.Status);
            var trials = store.Trials();
            Assert.Equal(Enumerable.Range(0, 30), trials.Select(t => t.Number));
            Assert.All(trials, t => Assert.Equal(TrialState.Complete, t.State));
        }
    }
}
