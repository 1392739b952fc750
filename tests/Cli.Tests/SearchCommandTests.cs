using System.Diagnostics;
using System.Text.Json;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Cli.Tests;

/// <summary><c>search</c> (with a config file), <c>report</c>, <c>export</c>, <c>studies list</c>, resume, Ctrl-C, and the <c>demo</c>.</summary>
public sealed class SearchCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("search-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    string TinyModel() => CliRunner.TinyModel(directory);

    static readonly string[] Budget = CliRunner.SearchBudget;

    [Fact]
    public async Task SearchFromAConfigFileThenReportExportListAndResume()
    {
        string model = TinyModel();
        string run = Path.Combine(directory, "run");
        string config = Path.Combine(directory, "search.json");
        File.WriteAllText(config, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["model"] = model, ["out"] = run, ["objectives"] = "accuracy,macs,energy", ["constraints"] = new[] { "macs<=0.8*baseline" },
            ["device"] = "pi4-estimate", ["trials"] = 4, ["sampler"] = "random", ["seed"] = 2,
        }));
        var search = await CliRunner.RunAsync(["search", "--config", config, "--json", .. Budget]);
        Assert.True(search.ExitCode == 0, search.Error);
        var summary = JsonDocument.Parse(search.Output).RootElement;
        Assert.Equal("finished", summary.GetProperty("status").GetString());
        // The sampler's four trials, then uniform pruning at the MAC bound as a fifth, fine-tuned beside the final pick.
        Assert.Equal(5, summary.GetProperty("trials").GetInt32());
        var front = summary.GetProperty("front").EnumerateArray().ToList();
        var exportedTrials = front.Select(f => f.GetProperty("trial").GetInt32()).Order().ToList();
        Assert.InRange(exportedTrials.Count, 1, 2);
        int exported = summary.GetProperty("best").GetInt32();
        Assert.True(File.Exists(summary.GetProperty("report").GetString()));
        Assert.Contains(summary.GetProperty("plots").EnumerateArray(), p => p.GetString()!.EndsWith("front-accuracy-energy.svg"));
        Assert.Contains("screening 5/5", search.Error); // progress goes to standard error with --json
        var uniform = summary.GetProperty("recommendation").GetProperty("uniformBaseline");
        Assert.Equal(4, uniform.GetProperty("trial").GetInt32());
        Assert.Equal(exported == 4, uniform.GetProperty("isAnswer").GetBoolean());
        Assert.True(uniform.GetProperty("validationMargin").GetDouble() >= 0); // the answer is never one it beats on validation

        // The recommendation: the best model, its savings counted on the two files, and the Pi's figures (energy as the
        // study estimated it; latency, which the study did not track, estimated by the same profile from the model's counts).
        var card = summary.GetProperty("recommendation");
        Assert.Equal(summary.GetProperty("best").GetInt32(), card.GetProperty("trial").GetInt32());
        string recommended = front.Single(f => f.GetProperty("trial").GetInt32() == card.GetProperty("trial").GetInt32()).GetProperty("model").GetString()!;
        var figures = card.GetProperty("figures").EnumerateArray().ToDictionary(f => (f.GetProperty("kind").GetString()!, f.GetProperty("on").GetString()));
        var (baseCost, modelCost) = (ModelCost.Analyze(OnnxModel.Load(model)), ModelCost.Analyze(OnnxModel.Load(recommended)));
        Assert.Equal(baseCost.Macs, figures[("macs", null)].GetProperty("baseline").GetDouble());
        Assert.Equal(modelCost.Macs, figures[("macs", null)].GetProperty("model").GetDouble());
        Assert.Equal(new FileInfo(recommended).Length, figures[("bytes", null)].GetProperty("model").GetDouble());
        var pi = Devices.DeviceProfile.RaspberryPi4B;
        double PiMs(ModelCost cost, string file) => pi.EstimateLatencyMs(new Devices.ModelCounts(cost.Macs, cost.Params * 4, OnnxModel.Load(file).Graph.Node.Count));
        Assert.Equal(PiMs(modelCost, recommended), figures[("latency", pi.Device)].GetProperty("model").GetDouble(), 9);
        Assert.Equal(PiMs(baseCost, model), figures[("latency", pi.Device)].GetProperty("baseline").GetDouble(), 9);
        var studyEnergy = front.Single(f => f.GetProperty("model").GetString() == recommended).GetProperty("values").EnumerateArray()
                               .Single(v => v.GetProperty("kind").GetString() == "energy").GetProperty("value").GetDouble();
        Assert.Equal(studyEnergy, figures[("energy", pi.Device)].GetProperty("model").GetDouble());
        Assert.Contains("estimated", figures[("energy", pi.Device)].GetProperty("provenance").GetString());
        Assert.Equal($"paretoprune export {run} --trial {card.GetProperty("trial").GetInt32()} --out model.onnx", card.GetProperty("exportCommand").GetString());
        // Energy comes from the Pi profile and says so in the stored study.
        using (var store = StudyStore.Open(Path.Combine(run, "study.db")))
        {
            Assert.Equal("random", store.Definition.Sampler);
            Assert.Contains("estimated by profile raspberry-pi-4b", store.Definition.Devices);
            // The kernels it trained with are the study's, for every process that resumes or joins it.
            Assert.StartsWith($"oneDNN {store.Definition.Kernels} ", summary.GetProperty("kernels").GetString());
        }

        var report = await CliRunner.RunAsync("report", run);
        Assert.True(report.ExitCode == 0, report.Error);
        Assert.Contains("exported models", report.Output);
        Assert.Contains("estimated, not measured", report.Output);
        Assert.Contains("uniform pruning at the same bound", report.Output);

        string chosen = Path.Combine(directory, "chosen.onnx");
        // An app holding the model it loaded from there keeps reading it whole: export replaces the file, it does not
        // write into it (a copy over it would change what the open handle reads).
        byte[] before = [1, 2, 3, 4];
        File.WriteAllBytes(chosen, before);
        using var held = File.OpenRead(chosen);
        var export = await CliRunner.RunAsync("export", run, "--trial", exported.ToString(), "--out", chosen, "--json");
        var stillRead = new byte[16];
        Assert.Equal(before, stillRead[..held.Read(stillRead)]);
        Assert.True(export.ExitCode == 0, export.Error);
        var exportJson = JsonDocument.Parse(export.Output).RootElement;
        Assert.Equal((exported, chosen), (exportJson.GetProperty("trial").GetInt32(), exportJson.GetProperty("model").GetString()));
        Assert.Contains(exportJson.GetProperty("values").EnumerateArray(), v => v.GetProperty("kind").GetString() == "energy");
        MeasureCommandTests.AssertCamelCase(exportJson);
        Assert.Equal(File.ReadAllBytes(Path.Combine(run, "models", $"trial-{exported}.onnx")), File.ReadAllBytes(chosen));
        int notExported = Enumerable.Range(0, 5).First(n => !exportedTrials.Contains(n));
        var refused = await CliRunner.RunAsync("export", run, "--trial", notExported.ToString(), "--out", chosen);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("exported trials: ", refused.Error);
        Assert.All(exportedTrials, t => Assert.Contains(t.ToString(), refused.Error[refused.Error.IndexOf("exported trials: ")..]));

        var list = await CliRunner.RunAsync("studies", "list", "--root", directory, "--json");
        Assert.True(list.ExitCode == 0, list.Error);
        var studies = JsonDocument.Parse(list.Output).RootElement.EnumerateArray().ToList();
        Assert.Equal(run, Assert.Single(studies).GetProperty("directory").GetString());

        var again = await CliRunner.RunAsync(["search", "--config", config, .. Budget]);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("--resume", again.Error);

        var resumed = await CliRunner.RunAsync(["search", "--config", config, "--trials", "6", "--resume", "--json", .. Budget]);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Equal(6, JsonDocument.Parse(resumed.Output).RootElement.GetProperty("trials").GetInt32());

        // Fewer trials than the study holds: nothing to screen, and it says so.
        var fewer = await CliRunner.RunAsync(["search", "--config", config, "--trials", "3", "--resume", "--json", .. Budget]);
        Assert.True(fewer.ExitCode == 0, fewer.Error);
        Assert.Contains("the study already holds 6 trials, more than the 3 asked for", System.Text.RegularExpressions.Regex.Replace(fewer.Error, @"\s+", " "));

        var changed = await CliRunner.RunAsync(["search", "--config", config, "--sampler", "bo", "--resume", .. Budget]);
        Assert.Equal(2, changed.ExitCode);
        Assert.Contains("sampler", changed.Error);
    }

    [Fact]
    public async Task MistakesAreExplained()
    {
        string model = TinyModel();
        var impossible = await CliRunner.RunAsync(["search", "--model", model, "--out", Path.Combine(directory, "a"), "--constraint", "macs<=0.0001*baseline", .. Budget]);
        Assert.Equal(2, impossible.ExitCode);
        Assert.Contains("no configuration can meet 'macs <= 0.0001*baseline'", impossible.Error);

        string config = Path.Combine(directory, "bad.json");
        File.WriteAllText(config, """{ "model": "x.onnx", "trails": 5 }""");
        var badField = await CliRunner.RunAsync("search", "--config", config);
        Assert.Equal(2, badField.ExitCode);
        Assert.Contains("unknown field 'trails'", badField.Error);

        string[] finalOverPromoteBudget = [.. Budget.Select((a, i) => i > 0 && Budget[i - 1] == "--promote" ? "1" : i > 0 && Budget[i - 1] == "--final" ? "5" : a)];
        var finalOverPromote = await CliRunner.RunAsync(["search", "--model", model, "--out", Path.Combine(directory, "f"), .. finalOverPromoteBudget]);
        Assert.Equal(2, finalOverPromote.ExitCode);
        Assert.Contains("5 final (--final) cannot exceed 1 promoted (--promote)", finalOverPromote.Error);
        Assert.False(Directory.Exists(Path.Combine(directory, "f")));

        var badSampler = await CliRunner.RunAsync(["search", "--model", model, "--out", Path.Combine(directory, "b"), "--sampler", "tpe", .. Budget]);
        Assert.Equal(2, badSampler.ExitCode);
        Assert.Contains("unknown sampler 'tpe'", badSampler.Error);

        var noMeter = await CliRunner.RunAsync(["search", "--model", model, "--out", Path.Combine(directory, "c"), "--objectives", "accuracy,energy",
                                                "--device", "local", "--meter", "none", .. Budget]);
        Assert.Equal(2, noMeter.ExitCode);
        Assert.Contains("has no energy meter", noMeter.Error);

        var missing = await CliRunner.RunAsync("report", Path.Combine(directory, "nothing-here"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("no study at", missing.Error);
    }

    [Fact]
    public async Task TheSensitivityPriorIsAStudySettingThatProbesFirst()
    {
        string run = Path.Combine(directory, "prior");
        var (code, output, error) = await CliRunner.RunAsync(["search", TinyModel(), "-o", run, "-n", "3", "--sampler", "bo",
                                                              "--constraint", "macs<=0.6*baseline", "--sensitivity-prior", .. CliRunner.SearchBudget]);
        Assert.True(code == 0, error);
        Assert.Contains("probing layer sensitivity", output);
        // The probes are a finding of their own: a plot in the report, and per dimension in --json.
        Assert.True(File.Exists(Path.Combine(run, "plots", "layer-sensitivity.png")));
        Assert.Contains("layer-sensitivity", File.ReadAllText(Path.Combine(run, "report.html")));
        var summary = JsonDocument.Parse((await CliRunner.RunAsync("report", run, "--json")).Output).RootElement;
        var probes = summary.GetProperty("sensitivity").EnumerateArray().ToList();
        Assert.NotEmpty(probes);
        Assert.All(probes, p => Assert.InRange(p.GetProperty("accuracyLost").GetDouble(), 0, 1));
        using var store = StudyStore.Open(Path.Combine(run, "study.db"));
        Assert.True(store.Definition.SensitivityPrior);
        Assert.NotNull(store.Backend.Get("sensitivity"));
        Assert.Contains("--sensitivity-prior", store.Invocation!.Keys); // a resume runs with it
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    static extern int Kill(int pid, int signal);

    [Fact]
    public async Task CtrlCFinishesTheTrialInFlightStoresItAndExitsWith130()
    {
        string model = TinyModel();
        string run = Path.Combine(directory, "interrupted");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"), "search", "--model", model, "--out", run,
                                       "--trials", "60", "--sampler", "random" }.Concat(Budget))
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null && !line.Contains("trial 1:")) { }
        Assert.NotNull(line);
        Assert.Equal(0, Kill(process.Id, 2)); // SIGINT, as Ctrl-C sends (libc: the base image may lack a kill binary)
        string rest = await process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token); // throws if the search did not stop within a minute of Ctrl-C
        string errors = await error;
        Assert.True(process.ExitCode == 130, errors); // stopped by the user: resumable, and not "done"
        Assert.Contains("stopping after the trials in flight", errors);
        Assert.Contains($"continue with: paretoprune search --resume --out {run}", System.Text.RegularExpressions.Regex.Replace(rest, @"\s+", " "));
        var store = StudyStore.Open(Path.Combine(run, "study.db"));
        Assert.Equal(StudyStatus.Stopped, store.Status);
        var trials = store.Trials();
        store.Dispose();
        Assert.InRange(trials.Count, 2, 59); // 60 trials: far more than finish while the test reacts (a busy test host can take seconds)
        Assert.All(trials, t => Assert.Equal(TrialState.Complete, t.State));

        // An incomplete study says so wherever it is shown.
        var listed = await CliRunner.RunAsync("studies", "list", "--root", directory);
        Assert.Contains("stopped (incomplete)", listed.Output);
        var report = await CliRunner.RunAsync("report", run);
        Assert.Contains("has not finished (status: stopped)", File.ReadAllText(Path.Combine(run, "report.html")));
        Assert.Contains("continue with: paretoprune search --resume --out", report.Output);
        Assert.Matches(@"continue \S*interrupted: paretoprune search --resume --out \S*interrupted", (await CliRunner.RunAsync("studies", "list", "--root", directory)).Output);

        // The same seed in this process proposes the same configurations as in that one (what resuming relies on).
        string again = Path.Combine(directory, "again");
        var rerun = await CliRunner.RunAsync(["search", "--model", model, "--out", again, "--trials", trials.Count.ToString(), "--sampler", "random",
                                              "--promote", "0", "--final", "0", .. Budget[..8], "--screening-steps", "2"]);
        Assert.True(rerun.ExitCode == 0, rerun.Error);
        using (var rerunStore = StudyStore.Open(Path.Combine(again, "study.db")))
            Assert.Equal(trials.Select(t => SearchSpace.Key(t.Kept)), rerunStore.Trials().Select(t => SearchSpace.Key(t.Kept)));

        // What the tool printed is all it takes to continue: the study holds every setting (from another directory too).
        var resumed = await CliRunner.RunAsync("search", "--resume", "--out", run, "--json");
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        var summary = JsonDocument.Parse(resumed.Output).RootElement;
        Assert.Equal("finished", summary.GetProperty("status").GetString());
        Assert.Equal(60, summary.GetProperty("trials").GetInt32());
        using (var finished = StudyStore.Open(Path.Combine(run, "study.db")))
            Assert.Equal(trials.Select(t => SearchSpace.Key(t.Kept)), finished.Trials().Take(trials.Count).Select(t => SearchSpace.Key(t.Kept))); // kept as they were

        // Repeating a setting is fine; changing one is refused in plain words (no escaped characters), naming the old and new values.
        var more = await CliRunner.RunAsync(["search", "--resume", "--out", run, "--model", model, "--trials", "61", "--sampler", "random", "--json"]);
        Assert.True(more.ExitCode == 0, more.Error);
        Assert.Equal(61, JsonDocument.Parse(more.Output).RootElement.GetProperty("trials").GetInt32());
        var changed = await CliRunner.RunAsync(["search", "--resume", "--out", run, "--criterion", "fpgm", "--constraint", "macs<=0.5*baseline"]);
        Assert.Equal(2, changed.ExitCode);
        Assert.True(changed.Error.Contains("--constraint was (not given), now macs<=0.5*baseline; --criterion was l1, now fpgm"), changed.Error);
        Assert.DoesNotContain("\\u", changed.Error);
        var nothing = await CliRunner.RunAsync("search", "--resume", "--out", Path.Combine(directory, "never"));
        Assert.Equal(2, nothing.ExitCode);
        Assert.Contains("there is no study", nothing.Error);
    }

    [Fact]
    public async Task ASearchSpecialisedToClassNamesExportsModelsForThoseClasses()
    {
        string model = TinyModel();
        string run = Path.Combine(directory, "subset");
        var search = await CliRunner.RunAsync(["search", "--model", model, "--out", run, "--trials", "3", "--sampler", "random",
                                               "--classes", "trouser,bag,sneaker", "--specialisation-epochs", "1", "--json", .. Budget]);
        Assert.True(search.ExitCode == 0, search.Error);
        var summary = JsonDocument.Parse(search.Output).RootElement;
        var front = summary.GetProperty("front").EnumerateArray().ToList();
        Assert.NotEmpty(front);
        foreach (var member in front)
        {
            var exported = OnnxModel.Load(member.GetProperty("model").GetString()!);
            Assert.Equal(["Trouser", "Bag", "Sneaker"], ModelInterface.Read(exported)!.ClassNames);
        }
        Assert.Contains("specialised", summary.GetProperty("baseline").EnumerateArray()
            .Single(v => v.GetProperty("kind").GetString() == "accuracy").GetProperty("fidelity").GetString());
        Assert.Equal(3, summary.GetProperty("fidelityCorrelations").GetArrayLength());
        Assert.True(File.Exists(Path.Combine(run, PruningSearch.SpecialisedBaseFile)));

        var unknown = await CliRunner.RunAsync(["search", "--model", model, "--out", Path.Combine(directory, "bad"), "--classes", "trouser,boots", .. Budget]);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown class 'boots'", unknown.Error);
        Assert.Contains("Ankle boot", unknown.Error); // the known classes are listed
    }

    [Fact]
    public async Task TheDemoRunsOnTheEmbeddedDefaultAndWritesItsReport()
    {
        string run = Path.Combine(directory, "demo");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "study.db"), ""); // an earlier demo's folder: replaced, said on stderr, not in the JSON
        var demo = await CliRunner.RunAsync("demo", "--out", run, "--trials", "5", "--json");
        Assert.True(demo.ExitCode == 0, demo.Error);
        Assert.Contains($"replacing the earlier demo in {run}", demo.Error);
        var summary = JsonDocument.Parse(demo.Output).RootElement;
        Assert.Equal(JsonValueKind.Null, summary.GetProperty("nothingExported").ValueKind);
        Assert.Equal(5, summary.GetProperty("trials").GetInt32());
        Assert.NotEmpty(summary.GetProperty("front").EnumerateArray());
        Assert.All(summary.GetProperty("front").EnumerateArray(), m => Assert.StartsWith("fine-tuned",
            m.GetProperty("values").EnumerateArray().Single(v => v.GetProperty("kind").GetString() == "accuracy").GetProperty("fidelity").GetString()));
        var baseline = summary.GetProperty("baseline").EnumerateArray().ToDictionary(v => v.GetProperty("kind").GetString()!, v => v);
        Assert.Equal("Estimated", baseline["energy"].GetProperty("provenance").GetProperty("kind").GetString());
        Assert.Equal("Measured", baseline["latency"].GetProperty("provenance").GetProperty("kind").GetString());
        Assert.InRange(baseline["accuracy"].GetProperty("value").GetDouble(), 0.88, 0.98); // the shipped model on unseen images
        MeasureCommandTests.AssertCamelCase(summary);
        foreach (string file in new[] { "report.html", "pareto.csv", "trials.csv", "plots/front-accuracy-energy.png", "plots/front-accuracy-latency.svg", "plots/hypervolume.png" })
            Assert.True(File.Exists(Path.Combine(run, file)), $"{file} is missing");
    }
}
