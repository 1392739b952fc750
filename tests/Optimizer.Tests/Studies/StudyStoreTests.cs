using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Tests.Studies;

public sealed class StudyStoreTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("study-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    static StudyDefinition Definition(string sampler = "bo") => new("s", "/m.onnx", "abc", "data", [ObjectiveKind.Accuracy, ObjectiveKind.Energy],
        ["macs <= 0.5*baseline"], sampler, 1, 10, "l1", new SearchSpaceOptions(), new FidelityOptions(), "latency: none", 10);

    static Trial Sample(int number) => new(number, "bo", [3, 4, 5], TrialState.Running, [], null, DateTimeOffset.UnixEpoch.AddHours(number));

    [Fact]
    public void TrialsSurviveReopeningWithValuesProvenanceAndStages()
    {
        string path = Path.Combine(directory, "study.db");
        var measured = new ObjectiveValue(ObjectiveKind.Energy, 1.25, Provenance.Measured("Raspberry Pi 4B", "INA260", "ONNX Runtime 1.31"), "deployed");
        var scored = new ObjectiveValue(ObjectiveKind.Accuracy, 0.875, Provenance.Scored("Fashion-MNIST", "validation"), "bn-recalibrated");
        var screening = new StageResult(SearchStage.Screening, [scored, measured], new Dictionary<string, double> { ["prune"] = 0.5 });
        var final = new StageResult(SearchStage.Final, [scored with { Value = 0.9, Fidelity = "fine-tuned 1 epoch" }, measured],
                                    new Dictionary<string, double> { ["fine-tune"] = 9 }, scored with { Value = 0.88 }, "models/trial-1.onnx");
        using (var store = StudyStore.Create(path, Definition()))
        {
            store.Save(Sample(0) with { State = TrialState.Failed, Error = "device unreachable" });
            store.Save(Sample(1).With(screening));
            store.Save(Sample(1).With(screening).With(final)); // an update replaces the row
            store.Save(Sample(2));
            store.Baseline = screening;
            store.Status = StudyStatus.Stopped;
        }
        using var reopened = StudyStore.Open(path);
        Assert.Empty(Definition().Differences(reopened.Definition));
        Assert.Equal(10, reopened.Definition.Trials);
        Assert.Equal(["accuracy", "energy"], reopened.Definition.Objectives.Select(o => o.Name()));
        Assert.Equal(StudyStatus.Stopped, reopened.Status);
        var trials = reopened.Trials();
        Assert.Equal([0, 1, 2], trials.Select(t => t.Number));
        Assert.Equal("device unreachable", trials[0].Error);
        Assert.Equal(TrialState.Failed, trials[0].State);
        Assert.Equal(TrialState.Complete, trials[1].State);
        Assert.Equal(TrialState.Running, trials[2].State);
        Assert.Equal([3, 4, 5], trials[1].Kept);
        var energy = trials[1].At(SearchStage.Screening)!.Values.Single(v => v.Kind == ObjectiveKind.Energy);
        Assert.Equal(measured, energy);
        Assert.Equal("INA260", energy.Provenance.Meter);
        Assert.Equal(0.88, trials[1].At(SearchStage.Final)!.TestAccuracy!.Value);
        Assert.Equal("models/trial-1.onnx", trials[1].Latest!.ModelPath);
        Assert.Equal(0.875, reopened.Baseline!.Value(ObjectiveKind.Accuracy));
    }

    [Fact]
    public void ConcurrentWritersLoseNothing()
    {
        string path = Path.Combine(directory, "study.db");
        using var store = StudyStore.Create(path, Definition());
        Parallel.For(0, 64, i => store.Save(Sample(i)));
        Assert.Equal(Enumerable.Range(0, 64), store.Trials().Select(t => t.Number));
    }

    [Fact]
    public void DifferencesNameWhatChanged()
    {
        var stored = Definition();
        Assert.Empty(stored.Differences(stored with { Trials = 99 }));
        var problems = stored.Differences(stored with { Sampler = "random", ModelSha256 = "def" });
        Assert.Equal(2, problems.Count);
        Assert.Contains(problems, p => p.StartsWith("sampler") && p.Contains("\"bo\"") && p.Contains("\"random\""));
        Assert.Contains(problems, p => p.StartsWith("model"));
    }

    [Fact]
    public void ANonStudyFileIsRefusedByName()
    {
        string path = Path.Combine(directory, "study.db");
        File.WriteAllText(path, "this is not a database, just text long enough to not be mistaken for an empty file...");
        var error = Assert.Throws<InvalidDataException>(() => StudyStore.Open(path));
        Assert.Contains(path, error.Message);
        Assert.Throws<FileNotFoundException>(() => StudyStore.Open(Path.Combine(directory, "none.db")));
        using (StudyStore.Create(Path.Combine(directory, "a.db"), Definition())) { }
        Assert.Throws<InvalidOperationException>(() => StudyStore.Create(Path.Combine(directory, "a.db"), Definition()));
    }

    [Theory]
    [InlineData("UPDATE study SET value = '{ not json' WHERE key = 'definition';", "definition that cannot be read")]
    [InlineData("DROP TABLE trials;", "no such table: trials")]
    public void ADamagedStudyIsRefusedByNameAndLeftAsItIs(string damage, string expected)
    {
        string path = Path.Combine(directory, "damaged.db");
        using (StudyStore.Create(path, Definition())) { }
        using (var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = damage;
            command.ExecuteNonQuery();
        }
        byte[] before = File.ReadAllBytes(path);
        var error = Assert.Throws<InvalidDataException>(() => StudyStore.Open(path));
        Assert.Contains(path, error.Message);
        Assert.Contains(expected, error.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void OneWriterAtATimeAndTheRefusalNamesIt()
    {
        string path = Path.Combine(directory, "study.db");
        using (var writer = StudyStore.Create(path, Definition()))
        {
            writer.Status = StudyStatus.Running;
            Assert.True(writer.IsWriter);
            Assert.True(StudyStore.IsBeingWritten(path));
            var refused = Assert.Throws<StoreInUseException>(() => StudyStore.OpenForWriting(path));
            Assert.Contains($"process {Environment.ProcessId} on {Environment.MachineName}", refused.Message);
            Assert.Contains(path, refused.Message);
            Assert.Throws<StoreInUseException>(() => StudyStore.Create(path, Definition()));

            // Readers (report, studies list) open it beside the writer, see it as running, and cannot change it.
            using var reader = StudyStore.Open(path);
            Assert.False(reader.IsWriter);
            Assert.Equal(StudyStatus.Running, reader.LiveStatus);
            Assert.Throws<InvalidOperationException>(() => reader.Save(Sample(0)));
            Assert.Throws<InvalidOperationException>(() => reader.Status = StudyStatus.Finished);
        }
        // The lock went with its holder: the study reads as killed while "running", and a new writer may continue it.
        Assert.False(StudyStore.IsBeingWritten(path));
        using (var reader = StudyStore.Open(path)) Assert.Equal(StudyStatus.Killed, reader.LiveStatus);
        using var next = StudyStore.OpenForWriting(path);
        Assert.Equal(StudyStatus.Running, next.LiveStatus);
    }

    [Fact]
    public void TrialNumbersComeFromTheStore()
    {
        string path = Path.Combine(directory, "study.db");
        using (var store = StudyStore.Create(path, Definition()))
        {
            var numbers = new int[32];
            Parallel.For(0, numbers.Length, i => numbers[i] = store.NewTrial("bo", [i, 1, 2]).Number);
            Assert.Equal(Enumerable.Range(0, 32), numbers.Order());
            var stored = store.Trials();
            Assert.All(stored, t => Assert.Equal(TrialState.Running, t.State));
            Assert.All(numbers.Select((n, i) => (n, i)), x => Assert.Equal(x.i, stored[x.n].Kept[0])); // each number holds its own configuration
            store.Save(Sample(40));
        }
        using var reopened = StudyStore.OpenForWriting(path);
        Assert.Equal(41, reopened.NewTrial("random", [1, 1, 1]).Number); // after the highest stored, whoever stored it
    }
}
