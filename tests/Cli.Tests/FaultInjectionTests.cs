using System.Diagnostics;
using System.Text.Json;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// The fault-injection suite: bad files, options and datasets; kill -9 in every stage of a search, then resume; two
/// processes on one study; a full disk; a corrupt store. Each case must end in exit 2 (or 130/137 for a stop) with a
/// message naming what is wrong, and lose nothing that was finished. Hostile requests to the device agent are in
/// <c>Devices.Tests/Agent/DeviceAgentTests</c>; hostile models and signals to a real agent process (the 211-byte
/// ConstantOfShape bomb, a large input to a dynamic-shape model, a bomb only a run can size, SIGTERM mid-measurement) in
/// <see cref="AgentCommandTests"/>; exit codes of single commands in <see cref="ExitCodeTests"/>.
/// </summary>
public sealed class FaultInjectionTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("faults-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    const int SigInt = 2, SigKill = 9;

    /// <summary>A search with a screening, promotion and final stage, each slow enough to be caught in.</summary>
    static string[] Search(string model, string run, int trials) =>
        ["search", model, "-o", run, "-n", trials.ToString(), "--sampler", "random", "--data", "fashion-mnist-sample",
         "--validation-limit", "200", "--recalibration-batches", "2", "--batch-size", "32", "--threads", "2", "--screening-steps", "30",
         "--promote", "3", "--promotion-steps", "30", "--final", "2", "--final-max-steps-per-epoch", "30"];

    static IReadOnlyList<Trial> Trials(string run)
    {
        using var store = StudyStore.Open(Path.Combine(run, "study.db"));
        return store.Trials();
    }

    static string Json(StageResult? stage) => JsonSerializer.Serialize(stage);

    [Theory]
    [InlineData("screening 2/")]
    [InlineData("promotion 1/")]
    [InlineData("final 1/")]
    public async Task KilledInAnyStageTheStudyResumesAndKeepsWhatWasFinished(string stage)
    {
        string model = CliRunner.TinyModel(directory), run = Path.Combine(directory, "run");
        using (var search = CliRunner.Start(Search(model, run, 6)))
        {
            CliRunner.WaitFor(search, stage);
            Assert.Equal(0, CliRunner.Signal(search.Id, SigKill));
            Assert.True(search.WaitForExit(30_000));
            Assert.Equal(128 + SigKill, search.ExitCode);
        }
        var before = Trials(run);

        // Wherever it is shown, the study says it is incomplete, and how to continue.
        var listed = await CliRunner.RunAsync("studies", "list", "--root", directory);
        Assert.Contains("killed (incomplete)", listed.Output);
        Assert.Contains("paretoprune search --resume --out", listed.Output);
        if (before.Any(t => t.At(SearchStage.Screening) is not null))
        {
            var report = await CliRunner.RunAsync("report", run);
            Assert.True(report.ExitCode == 0, report.Error);
            Assert.Contains("has not finished (status: killed)", File.ReadAllText(Path.Combine(run, "report.html")));
        }

        var resumed = await CliRunner.RunAsync("search", "--resume", "--out", run, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal("finished", JsonDocument.Parse(resumed.Output).RootElement.GetProperty("status").GetString());
        var after = Trials(run);
        Assert.Equal(Enumerable.Range(0, 6), after.Select(t => t.Number)); // each trial once, numbered without gaps
        Assert.All(after, t => Assert.True(t.State == TrialState.Complete, $"trial {t.Number}: {t.State} {t.Error}"));
        foreach (var old in before)
        {
            var now = after.Single(t => t.Number == old.Number);
            Assert.Equal(old.Kept, now.Kept); // a trial in flight is re-run with the configuration it had
            foreach (var result in old.Stages) Assert.Equal(Json(result), Json(now.At(result.Stage))); // finished work is kept as it was
        }
        var exported = after.Where(t => t.At(SearchStage.Final) is not null).ToList();
        Assert.Equal(2, exported.Count);
        Assert.All(exported, t => Assert.True(File.Exists(Path.Combine(run, t.At(SearchStage.Final)!.ModelPath!))));
    }

    [Fact]
    public async Task ASecondProcessOnAStudyIsRefusedNamingTheFirst()
    {
        string model = CliRunner.TinyModel(directory), run = Path.Combine(directory, "run");
        // 40 trials: the first process must still be searching after the three commands below (a few seconds on a busy host).
        using (var first = CliRunner.Start(Search(model, run, 40)))
        {
            CliRunner.WaitFor(first, "screening 1/");
            var second = await CliRunner.RunAsync("search", "--resume", "--out", run);
            Assert.Equal(2, second.ExitCode);
            Assert.Contains("is being written by another process", second.Error);
            Assert.Contains($"process {first.Id} on {Environment.MachineName}", second.Error);
            var fresh = await CliRunner.RunAsync(Search(model, run, 40));
            Assert.Equal(2, fresh.ExitCode);

            var listed = await CliRunner.RunAsync("studies", "list", "--root", directory, "--json");
            var study = Assert.Single(JsonDocument.Parse(listed.Output).RootElement.EnumerateArray());
            Assert.Equal("running", study.GetProperty("status").GetString());
            Assert.StartsWith($"process {first.Id} on", study.GetProperty("writer").GetString());
            Assert.Equal(JsonValueKind.Null, study.GetProperty("resume").ValueKind); // nothing to resume while it runs

            Assert.Equal(0, CliRunner.Signal(first.Id, SigInt));
            Assert.True(first.WaitForExit(60_000));
            Assert.Equal(130, first.ExitCode);
        }
        // The refused processes changed nothing: the first one's trials are all there, numbered in order, and it resumes.
        var stored = Trials(run);
        Assert.Equal(Enumerable.Range(0, stored.Count), stored.Select(t => t.Number));
        Assert.All(stored, t => Assert.Null(t.Error));
        var resumed = await CliRunner.RunAsync("search", "--resume", "--out", run, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal(40, Trials(run).Count);
    }

    [FactWhenATmpfsCanBeMounted]
    public async Task AFullDiskStopsTheSearchWithTheStudyIntactAndItResumes()
    {
        string model = CliRunner.TinyModel(directory);
        using var disk = new SmallDisk(Path.Combine(directory, "small"), megabytes: 4);
        string run = Path.Combine(disk.Path, "run");
        string filler = Path.Combine(disk.Path, "filler");
        disk.FillLeaving(filler, bytes: 384 * 1024);

        var full = await CliRunner.RunAsync(Search(model, run, 6));
        log.WriteLine(full.Error);
        Assert.True(full.ExitCode == 2, $"exit {full.ExitCode}: {full.Error}");
        Assert.Contains($"the disk holding {run} is full", full.Error);
        Assert.Contains("free some space and resume", full.Error);
        Assert.DoesNotContain("internal error", full.Error);
        Assert.DoesNotContain("   at ", full.Error); // no stack trace

        // Closing the store gave back its write-ahead log's space: fill that too, so the disk is still full for the report.
        disk.FillLeaving(filler + ".rest", bytes: 0);
        var report = await CliRunner.RunAsync("report", run); // the disk still full: the report cannot be written either, and says so
        Assert.True(report.ExitCode == 2, $"exit {report.ExitCode}: {report.Error}");
        Assert.Contains("No space left on device", report.Error);

        var before = Trials(run); // the study opens: intact
        Assert.NotEmpty(before); // the disk filled during the search, not before it
        log.WriteLine(string.Join("\n", before.Select(t => $"trial {t.Number}: {t.State}, stages {string.Join(",", t.Stages.Select(s => s.Stage))}")));
        Assert.All(before, t => Assert.Null(t.Error)); // a full disk is not the candidate's fault: no trial failed for it
        File.Delete(filler);
        File.Delete(filler + ".rest");
        var resumed = await CliRunner.RunAsync("search", "--resume", "--out", run, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        var after = Trials(run);
        Assert.Equal(Enumerable.Range(0, 6), after.Select(t => t.Number));
        Assert.All(after, t => Assert.Equal(TrialState.Complete, t.State));
        foreach (var old in before.Where(t => t.State == TrialState.Complete))
            Assert.Equal(Json(old.At(SearchStage.Screening)), Json(after[old.Number].At(SearchStage.Screening)));
    }

    [Fact]
    public async Task ACorruptStoreIsRefusedByEveryCommandAndNeverRewritten()
    {
        string run = Path.Combine(directory, "run"), path = Path.Combine(run, "study.db");
        var definition = new StudyDefinition("run", "/m.onnx", "abc", "data", [Objectives.ObjectiveKind.Accuracy], [], "random", 0, 4, "l1",
                                             new SearchSpaceOptions(), new FidelityOptions(), "latency: none", 10);
        using (var store = StudyStore.Create(path, definition))
            for (int i = 0; i < 200; i++) store.Save(new Trial(i, "random", [i, 2, 3], TrialState.Running, [], new string('x', 400), DateTimeOffset.UtcNow));
        var bytes = File.ReadAllBytes(path);
        bytes.AsSpan(4096, 8192).Fill(0x5A); // pages overwritten (a bad sector, a half-copied file)
        File.WriteAllBytes(path, bytes);

        foreach (var args in new[] { ["report", run], ["export", run, "--out", Path.Combine(directory, "x.onnx")], new[] { "search", "--resume", "--out", run } })
        {
            var refused = await CliRunner.RunAsync(args);
            Assert.True(refused.ExitCode == 2, $"{args[0]}: exit {refused.ExitCode}: {refused.Error}");
            Assert.Contains(path, refused.Error);
            Assert.Contains("damaged", refused.Error);
        }
        var listed = await CliRunner.RunAsync("studies", "list", "--root", directory);
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains($"skipped {path}", listed.Error);
        Assert.Equal(bytes, File.ReadAllBytes(path));
        Assert.False(File.Exists(Path.Combine(directory, "x.onnx")));
    }

    [Fact]
    public async Task ReadersLeaveAnEmptyOrAFinishedStoreByteForByte()
    {
        // An empty study.db (a copy that failed, a `touch`): refused by name, and still empty.
        string empty = Path.Combine(directory, "empty"), emptyPath = Path.Combine(empty, "study.db");
        Directory.CreateDirectory(empty);
        File.WriteAllBytes(emptyPath, []);
        var listed = await CliRunner.RunAsync("studies", "list", "--root", directory);
        Assert.Equal(0, listed.ExitCode);
        Assert.Contains($"skipped {emptyPath}", listed.Error);
        var report = await CliRunner.RunAsync("report", empty);
        Assert.Equal(2, report.ExitCode);
        Assert.Contains("is empty", report.Error);
        Assert.Equal(0, new FileInfo(emptyPath).Length);

        // A finished study, closed by its writer: reading it changes no byte of any file in its folder.
        string run = Path.Combine(directory, "closed"), path = Path.Combine(run, "study.db");
        var definition = new StudyDefinition("closed", "/m.onnx", "abc", "data", [Objectives.ObjectiveKind.Accuracy], [], "random", 0, 4, "l1",
                                             new SearchSpaceOptions(), new FidelityOptions(), "latency: none", 10);
        using (var store = StudyStore.Create(path, definition)) store.Save(new Trial(0, "random", [1, 2, 3], TrialState.Running, [], null, DateTimeOffset.UtcNow));
        Dictionary<string, byte[]> Files() => Directory.GetFiles(run).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        var before = Files();
        Assert.Equal(0, (await CliRunner.RunAsync("studies", "list", "--root", run, "--json")).ExitCode);
        await CliRunner.RunAsync("report", run);
        // The dashboard too, serving both studies (the empty one as what it is) until it is stopped.
        using (var dashboard = CliRunner.Start("dashboard", run, empty, "--listen", "127.0.0.1:0"))
        {
            try
            {
                string? line;
                while ((line = dashboard.StandardOutput.ReadLine()) is not null && !line.Contains("dashboard: ")) { }
                var address = new Uri(System.Text.RegularExpressions.Regex.Match(line ?? "", @"http://\S+").Value);
                using var http = new HttpClient { BaseAddress = address };
                string studies = await http.GetStringAsync("api/studies");
                // It read the store: its one trial, running.
                var read = System.Text.Json.JsonDocument.Parse(studies).RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == "closed");
                Assert.Equal(1, read.GetProperty("trials").GetInt32());
                Assert.Equal("running", read.GetProperty("points")[0].GetProperty("state").GetString());
            }
            finally
            {
                dashboard.Kill(true);
                dashboard.WaitForExit(10_000);
            }
        }
        Assert.Equal(0, new FileInfo(emptyPath).Length);
        var after = Files();
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        Assert.All(before, f => Assert.True(f.Value.AsSpan().SequenceEqual(after[f.Key]), $"{f.Key} changed"));
    }

    public static TheoryData<string[], string> BadInputs => new()
    {
        { ["inspect", "{dir}/missing.onnx"], "missing.onnx" },
        { ["inspect", "{dir}/garbage.onnx"], "garbage.onnx" },
        { ["prune", "{dir}/truncated.onnx", "--amount", "0.5", "--out", "{dir}/p.onnx"], "truncated.onnx" },
        { ["evaluate", "{tiny}", "--data", "{dir}/corrupt-data"], "train-images-idx3-ubyte" },
        { ["prune", "{tiny}", "--amount", "1.5", "--out", "{dir}/p.onnx"], "amount" },
        { ["search", "--model", "{tiny}", "--objectives", "accuracy,accuracy", "--out", "{dir}/r"], "accuracy" },
        { ["search", "--model", "{tiny}", "--constraint", "macs<=", "--out", "{dir}/r"], "macs<=" },
        { ["search", "--model", "{tiny}", "--out", "{dir}/garbage.onnx"], "garbage.onnx" },
        { ["search", "--model", "{tiny}", "--trials", "lots"], "whole number" },
        { ["prune", "{tiny}", "--amount", "0.5", "--out", "{tiny}"], "is the input model" },
        { ["prune", "{tiny}", "--sparsity", "0.5", "--amount", "0.5", "--out", "{dir}/p.onnx"], "give one" },
        { ["search", "--model", "{tiny}", "--sensitivity-prior", "--sampler", "random", "--out", "{dir}/r"], "--sampler bo" },
        { ["search", "--model", "{tiny}", "--sensitivity-prior", "--data", "fashion-mnist-sample", "--validation-limit", "100", "--out", "{dir}/r"], "there is none" },
        { ["search", "--model", "{tiny}", "--promote", "1", "--final", "5", "--out", "{dir}/r"], "--final" },
        { ["measure", "{tiny}", "--retry-window", "5"], "applies to a device agent" },
        { ["measure", "{tiny}", "--device", "http://127.0.0.1:9", "--token-file", "{dir}/token", "--retry-window", "-1"], "--retry-window" },
        { ["measure", "{tiny}", "--device", "http://127.0.0.1:9", "--token-file", "{dir}/token", "--retry-window", "0"], "127.0.0.1:9" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public async Task BadInputIsExitTwoWithAMessageNamingIt(string[] args, string named)
    {
        string tiny = CliRunner.TinyModel(directory);
        File.WriteAllText(Path.Combine(directory, "garbage.onnx"), "this is not a model");
        File.WriteAllBytes(Path.Combine(directory, "truncated.onnx"), File.ReadAllBytes(tiny)[..400]);
        File.WriteAllText(Path.Combine(directory, "token"), new string('t', 40));
        Directory.CreateDirectory(Path.Combine(directory, "corrupt-data"));
        foreach (string name in new[] { "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" })
            File.WriteAllBytes(Path.Combine(directory, "corrupt-data", name), [0, 0, 8, 3, 0, 0, 0, 9, 0, 0]); // claims 9 images, holds none
        var expanded = args.Select(a => a.Replace("{dir}", directory).Replace("{tiny}", tiny)).ToArray();

        var (code, _, error) = await CliRunner.RunAsync(expanded);
        Assert.True(code == 2, $"{string.Join(' ', expanded)}: exit {code}: {error}");
        Assert.Contains(named, error);
        Assert.DoesNotContain("internal error", error);
    }
}

/// <summary>A tmpfs of a few megabytes, to fill the disk under a run; unmounted on dispose.</summary>
sealed class SmallDisk : IDisposable
{
    public SmallDisk(string path, int megabytes)
    {
        Path = path;
        Directory.CreateDirectory(path);
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", path);
    }

    public string Path { get; }

    /// <summary>Writes <paramref name="file"/> until only about <paramref name="bytes"/> are free.</summary>
    public void FillLeaving(string file, long bytes)
    {
        long free = new DriveInfo(Path).AvailableFreeSpace;
        using var stream = File.Create(file);
        var block = new byte[64 * 1024];
        for (long left = free - bytes; left > 0; left -= block.Length) stream.Write(block, 0, (int)Math.Min(block.Length, left));
    }

    public static bool CanMount(out string? why)
    {
        why = null;
        if (!OperatingSystem.IsLinux()) why = "tmpfs needs Linux";
        else if (!Environment.IsPrivilegedProcess) why = "mounting a tmpfs needs root";
        else
        {
            string probe = Directory.CreateTempSubdirectory("tmpfs-probe-").FullName;
            try
            {
                Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe);
                Run("umount", probe);
            }
            catch (Exception e) { why = $"this machine refuses to mount a tmpfs: {e.Message}"; }
            finally { Directory.Delete(probe); }
        }
        return why is null;
    }

    static void Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{program} {string.Join(' ', args)}: {error.Trim()}");
    }

    public void Dispose() => Run("umount", "-l", Path);
}

/// <summary>A fact reported as skipped, with the reason, where no tmpfs can be mounted (not root, or a confined container).</summary>
public sealed class FactWhenATmpfsCanBeMountedAttribute : FactAttribute
{
    public FactWhenATmpfsCanBeMountedAttribute()
    {
        if (!SmallDisk.CanMount(out string? why)) Skip = why;
    }
}
