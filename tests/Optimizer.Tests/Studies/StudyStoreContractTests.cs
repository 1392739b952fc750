using System.Collections.Concurrent;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Optimizer.Tests.Studies;

/// <summary>
/// The <see cref="IStudyStore"/> contract, run against every backend: SQLite (a file) and PostgreSQL (a real server, see
/// <see cref="PostgresServer"/>). On SQLite the concurrent parties are threads sharing the process's one writer; on
/// PostgreSQL each is a separate store instance with its own connections, as separate processes would have.
/// </summary>
public sealed class StudyStoreContractTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("contract-").FullName;
    readonly List<IDisposable> opened = [];

    public void Dispose()
    {
        foreach (var store in opened) store.Dispose();
        Directory.Delete(directory, recursive: true);
    }

    static readonly StudyDefinition Definition = new("contract", "/m.onnx", "abc", "data", [ObjectiveKind.Accuracy, ObjectiveKind.Macs], [], "random", 0, 50,
        "l1", new SearchSpaceOptions(), new FidelityOptions(), "latency: none; energy: none", 10);

    /// <summary>The study's first store, and a factory of further parties on the same study.</summary>
    (IStudyStore First, Func<IStudyStore> Another) Open(string backend)
    {
        if (backend == "sqlite")
        {
            var store = StudyStore.Create(Path.Combine(directory, "study.db"), Definition);
            opened.Add(store);
            return (store.Backend, () => store.Backend);
        }
        var storage = StudyStorage.Parse(PostgresServer.Shared.NewDatabase());
        IStudyStore Join()
        {
            var (store, _) = StudyStore.CreateOrJoin(storage, "contract", Definition);
            opened.Add(store);
            return store.Backend;
        }
        return (Join(), Join);
    }

    static WorkerRecord Worker(string id) =>
        new(id, "elsewhere", 1, DateTimeOffset.UnixEpoch, $"worker {id}", DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, Retired: false);

    static readonly TimeSpan Long = TimeSpan.FromMinutes(5);

    static Trial Finished(Trial trial, double accuracy) => trial.With(new StageResult(SearchStage.Screening,
        [new ObjectiveValue(ObjectiveKind.Accuracy, accuracy, Provenance.Scored("data", "validation"), "screened")], new Dictionary<string, double>()));

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void LivenessIsTheWritersAndDeletionLeavesNothing(string backend)
    {
        var storage = backend == "sqlite" ? null : StudyStorage.Parse(PostgresServer.Shared.NewDatabase());
        IStudyStore store;
        if (storage is null) store = Open(backend).First;
        else
        {
            var (created, _) = StudyStore.CreateOrJoin(storage, "contract", Definition);
            opened.Add(created);
            store = created.Backend;
        }
        Assert.True(store.IsWriter);
        if (backend == "sqlite")
        {
            // The writer's process is the live writer while it holds the file; a reader beside it sees it, and none after.
            string path = store.Location;
            Assert.NotNull(store.LiveWriter(Long));
            using (var reader = StudyStore.Open(path))
            {
                Assert.False(reader.Backend.IsWriter);
                Assert.Equal(store.LiveWriter(Long), reader.Backend.LiveWriter(Long));
                Assert.Throws<InvalidOperationException>(() => reader.Backend.Delete());
            }
            store.Delete();
            Assert.All(new[] { path, path + "-wal", path + "-shm", path + ".lock" }, f => Assert.False(File.Exists(f), $"{f} is left"));
            Assert.Throws<FileNotFoundException>(() => StudyStore.Open(path));
            return;
        }
        // A server study: its live workers, by heartbeat; none once retired or silent.
        Assert.Null(store.LiveWriter(Long));
        store.Register(Worker("a"));
        Assert.Equal("worker a", store.LiveWriter(Long));
        Assert.Null(store.LiveWriter(TimeSpan.Zero));
        store.Retire("a");
        Assert.Null(store.LiveWriter(Long));
        Assert.Contains("contract", StudyStore.Names(storage!));
        store.Delete();
        Assert.DoesNotContain("contract", StudyStore.Names(storage!));
        Assert.Throws<StudyNotFoundException>(() => StudyStore.Join(storage!, "contract"));
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void ConcurrentProposersGetNumbersFromTheStoreWithoutGapsOrRepeats(string backend)
    {
        var (_, another) = Open(backend);
        var parties = Enumerable.Range(0, 4).Select(_ => another()).ToList();
        var numbers = new ConcurrentBag<int>();
        var seen = new ConcurrentBag<(int Number, int Before)>();
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, p =>
        {
            for (int i = 0; i < 10; i++)
            {
                int before = -1;
                var trial = parties[p].Propose($"w{p}", all =>
                {
                    before = all.Count;
                    return new Proposal("random", [p, i]);
                })!;
                numbers.Add(trial.Number);
                seen.Add((trial.Number, before));
            }
        });
        Assert.Equal(Enumerable.Range(0, 40), numbers.Order());
        // Each proposer saw every trial stored before its own: the proposals are serialised.
        Assert.All(seen, s => Assert.Equal(s.Number, s.Before));
        var stored = parties[0].Trials();
        Assert.Equal(Enumerable.Range(0, 40), stored.Select(t => t.Number));
        Assert.All(stored, t => Assert.Equal(TrialState.Running, t.State));
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void AProposalThatDeclinesOrFailsStoresNothing(string backend)
    {
        var (store, _) = Open(backend);
        Assert.Null(store.Propose("w", _ => null));
        Assert.Throws<InvalidOperationException>(() => store.Propose("w", _ => throw new InvalidOperationException("sampler failed")));
        Assert.Empty(store.Trials());
        Assert.Empty(store.Tasks());
        Assert.Equal(0, store.Propose("w", _ => new Proposal("bo", [1]))!.Number);
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void AProposedTrialIsClaimedByItsProposerWhileItLives(string backend)
    {
        var (store, another) = Open(backend);
        store.Register(Worker("a"));
        store.Register(Worker("b"));
        var trial = store.Propose("a", _ => new Proposal("bo", [3, 4]))!;
        var task = Assert.Single(store.Tasks());
        Assert.Equal((trial.Number, SearchStage.Screening, "a", 1, false), (task.Trial, task.Stage, task.Worker, task.Attempts, task.Done));
        Assert.Null(another().Claim("b", SearchStage.Screening, [trial.Number], Long));
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void EachFreeTaskIsClaimedByExactlyOneOfConcurrentWorkers(string backend)
    {
        var (store, another) = Open(backend);
        var parties = Enumerable.Range(0, 4).Select(_ => another()).ToList();
        for (int i = 0; i < 12; i++) store.Propose("setup", _ => new Proposal("bo", [i]));
        var numbers = Enumerable.Range(0, 12).ToList();
        store.AddTasks(SearchStage.Promotion, numbers);
        store.AddTasks(SearchStage.Promotion, numbers); // idempotent: every worker adds the same selection
        for (int p = 0; p < 4; p++) parties[p].Register(Worker($"w{p}"));
        var claims = new ConcurrentBag<(int Trial, string Worker)>();
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, p =>
        {
            while (parties[p].Claim($"w{p}", SearchStage.Promotion, numbers, Long) is { } item) claims.Add((item.Trial, $"w{p}"));
        });
        Assert.Equal(numbers, claims.Select(c => c.Trial).Order());
        var tasks = store.Tasks().Where(t => t.Stage == SearchStage.Promotion).ToList();
        Assert.Equal(12, tasks.Count);
        Assert.All(tasks, t => Assert.Equal((1, claims.Single(c => c.Trial == t.Trial).Worker), (t.Attempts, t.Worker)));
        // Only the tasks asked about are handed out.
        store.AddTasks(SearchStage.Final, [0, 1]);
        Assert.Equal(1, store.Claim("w0", SearchStage.Final, [1], Long)!.Trial);
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void ASilentWorkersTaskIsClaimedAgainAfterTheTimeoutAndARetiredOnesAtOnce(string backend)
    {
        var (store, another) = Open(backend);
        var other = another();
        store.Register(Worker("a"));
        other.Register(Worker("b"));
        var first = store.Propose("a", _ => new Proposal("bo", [1]))!;
        var second = store.Propose("a", _ => new Proposal("bo", [2]))!;
        var timeout = TimeSpan.FromSeconds(1.5);
        Assert.Null(other.Claim("b", SearchStage.Screening, [first.Number, second.Number], timeout));

        Thread.Sleep(TimeSpan.FromSeconds(2));
        store.Heartbeat("b"); // b beats, a is silent
        var reclaimed = other.Claim("b", SearchStage.Screening, [first.Number, second.Number], timeout);
        Assert.Equal((first.Number, "b", 2), (reclaimed!.Trial, reclaimed.Worker, reclaimed.Attempts));
        // A beating worker keeps its tasks.
        store.Heartbeat("a");
        Assert.Null(other.Claim("b", SearchStage.Screening, [second.Number], timeout));
        store.Retire("a");
        Assert.Equal(second.Number, other.Claim("b", SearchStage.Screening, [second.Number], Long)!.Trial);
        Assert.True(store.Workers().Single(w => w.Id == "a").Retired);
        Assert.False(store.Workers().Single(w => w.Id == "b").Retired);
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void ATaskCompletesOnceAndALateSecondResultChangesNothing(string backend)
    {
        var (store, another) = Open(backend);
        var other = another();
        var trial = store.Propose("a", _ => new Proposal("bo", [5, 6]))!;
        Assert.True(other.Complete(Finished(trial, 0.8), SearchStage.Screening, "b"));
        Assert.False(store.Complete(Finished(trial, 0.1), SearchStage.Screening, "a"));
        var stored = Assert.Single(store.Trials());
        Assert.Equal(TrialState.Complete, stored.State);
        Assert.Equal(0.8, stored.At(SearchStage.Screening)!.Value(ObjectiveKind.Accuracy));
        var task = Assert.Single(store.Tasks());
        Assert.True(task.Done);
        Assert.Equal("b", task.CompletedBy);
        Assert.Null(store.Claim("c", SearchStage.Screening, [trial.Number], TimeSpan.Zero));
        // A stage task completes even where nobody added it (a study from before tasks were stored).
        Assert.True(store.Complete(stored, SearchStage.Final, "a"));
        Assert.Contains(store.Tasks(), t => t is { Stage: SearchStage.Final, Done: true, CompletedBy: "a" });
    }

    [Theory, InlineData("sqlite"), PostgresBackend]
    public void TheFirstValueOfAKeyStaysAndArtifactsRoundTrip(string backend)
    {
        var (store, another) = Open(backend);
        var other = another();
        Assert.Equal("one", store.PutIfAbsent("baseline", "one"));
        Assert.Equal("one", other.PutIfAbsent("baseline", "two"));
        other.Put("status", "running");
        Assert.Equal("running", store.Get("status"));
        Assert.Null(store.Get("missing"));
        byte[] data = [.. Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7))];
        store.PutArtifact("models/trial-3.onnx", data);
        Assert.Equal(data, other.GetArtifact("models/trial-3.onnx"));
        Assert.Null(other.GetArtifact("models/none.onnx"));
    }

    [Fact]
    public void AStudyFromBeforeTasksIsUpgradedWithWhatItHadDone()
    {
        // Schema 1: the trials table only. Build one by hand, as an older version wrote it.
        string path = Path.Combine(directory, "old.db");
        using (var store = StudyStore.Create(path, Definition))
        {
            var done = store.NewTrial("bo", [1]);
            store.Save(Finished(done, 0.7));
            store.NewTrial("bo", [2]);
        }
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "DROP TABLE tasks; DROP TABLE workers; DROP TABLE artifacts; UPDATE study SET value = '1' WHERE key = 'schema';";
            command.ExecuteNonQuery();
        }
        using (var reader = StudyStore.Open(path))
        {
            Assert.Equal(2, reader.Trials().Count); // read as it is
            Assert.Empty(reader.Backend.Tasks());
        }
        using var upgraded = StudyStore.OpenForWriting(path);
        var tasks = upgraded.Backend.Tasks();
        Assert.Equal([(0, true), (1, false)], tasks.Select(t => (t.Trial, t.Done)));
        Assert.Equal(1, upgraded.Backend.Claim("w", SearchStage.Screening, [0, 1], Long)!.Trial);
    }
}
