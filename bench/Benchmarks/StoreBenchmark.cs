using System.Diagnostics;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>store [POSTGRESQL_URL]</c>: what the study store costs a worker per trial, on SQLite and (given a server) PostgreSQL.
/// One trial's store traffic as <c>SearchLoop</c> makes it: a decision (read trials, tasks and workers, claim orphans,
/// propose) and a completion (store the result, read the tasks for progress), over a study of 60 trials.
/// </summary>
static class StoreBenchmark
{
    const int Trials = 60;

    public static void Run(string? url)
    {
        Console.WriteLine("| store | per trial (median) | min | max | trials |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        string directory = Directory.CreateTempSubdirectory("store-bench-").FullName;
        try
        {
            using (var sqlite = StudyStore.Create(Path.Combine(directory, "study.db"), Definition))
                Report("SQLite (WAL, one file)", sqlite);
            if (url is null) Console.WriteLine("| PostgreSQL | (no server URL given) | | | |");
            else
            {
                var storage = StudyStorage.Parse(url);
                var (server, _) = StudyStore.CreateOrJoin(storage, $"bench-{Guid.NewGuid():N}", Definition);
                using (server) Report($"PostgreSQL (loopback TCP, {storage.Location})", server);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    static readonly StudyDefinition Definition = new("bench", "/m.onnx", "abc", "data", [ObjectiveKind.Accuracy, ObjectiveKind.Macs], [], "random", 0, Trials,
        "l1", new SearchSpaceOptions(), new FidelityOptions(), "latency: none; energy: none", 10);

    static void Report(string name, StudyStore store)
    {
        var backend = store.Backend;
        var me = new WorkerRecord("bench", Environment.MachineName, Environment.ProcessId, DateTimeOffset.UtcNow, "bench", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, false);
        backend.Register(me);
        var values = new List<ObjectiveValue>
        {
            new(ObjectiveKind.Accuracy, 0.9, Provenance.Scored("Fashion-MNIST", "validation"), "screened"),
            new(ObjectiveKind.Macs, 1e6, Provenance.Computed, "computed"),
        };
        var times = new List<double>();
        for (int i = 0; i < Trials; i++)
        {
            var watch = Stopwatch.StartNew();
            var trials = backend.Trials();
            _ = backend.Tasks();
            _ = backend.Workers();
            _ = backend.Claim(me.Id, SearchStage.Screening, trials.Where(t => t.State == TrialState.Running).Select(t => t.Number).ToList(), TimeSpan.FromSeconds(30));
            var trial = backend.Propose(me.Id, all => new Proposal("random", [all.Count % 7 + 1, 8, 16, 16]))!;
            backend.Complete(trial.With(new StageResult(SearchStage.Screening, values, new Dictionary<string, double> { ["fine-tune"] = 1 })), SearchStage.Screening, me.Id);
            _ = backend.Tasks();
            times.Add(watch.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        Console.WriteLine($"| {name} | {times[times.Count / 2]:0.00} ms | {times[0]:0.00} ms | {times[^1]:0.00} ms | {Trials} |");
    }
}
