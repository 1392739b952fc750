using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ParetoPrune.Objectives;

namespace ParetoPrune.Optimizer.Search;

/// <summary>What a study searches, fixed at creation: a resumed study must ask the same question.</summary>
/// <param name="ModelSha256">Hash of the base model file: resuming against another model is refused.</param>
/// <param name="Constraints">Canonical constraint texts (<see cref="Constraint.ToString"/>).</param>
/// <param name="Devices">Where latency and energy come from, in words (part of the question: estimates are not measurements).</param>
/// <param name="Classes">Classes the searched model tells apart (chance accuracy is 1 / Classes).</param>
/// <param name="ClassSubset">Task specialisation: the base model's classes the search specialised it to, in order; null for all.</param>
public sealed record StudyDefinition(
    string Name, string ModelPath, string ModelSha256, string Data, IReadOnlyList<ObjectiveKind> Objectives, IReadOnlyList<string> Constraints,
    string Sampler, int Seed, int Trials, string Criterion, SearchSpaceOptions Space, FidelityOptions Fidelity, string Devices, int Classes,
    IReadOnlyList<int>? ClassSubset = null)
{
    /// <summary>Why the validation images may have been seen by the model in training (<see cref="SearchData.Caveat"/>); null when known unseen.</summary>
    public string? ValidationCaveat { get; init; }

    /// <summary>Differences that forbid resuming (the trial budget may grow, everything else must match).</summary>
    public IReadOnlyList<string> Differences(StudyDefinition other)
    {
        var problems = new List<string>();
        void Compare<T>(string what, T stored, T requested)
        {
            string a = JsonSerializer.Serialize(stored, StudyStore.JsonOptions), b = JsonSerializer.Serialize(requested, StudyStore.JsonOptions);
            if (a != b) problems.Add($"{what}: the study has {a}, this run asks for {b}");
        }
        static string Short(string hash) => hash.Length > 12 ? hash[..12] + "…" : hash;
        if (ModelSha256 != other.ModelSha256)
            problems.Add($"model: {other.ModelPath} is not the model the study searched ({ModelPath}, SHA-256 {Short(ModelSha256)}; this one {Short(other.ModelSha256)})");
        Compare("data", Data, other.Data);
        Compare("objectives", Objectives.Select(o => o.Name()).ToArray(), other.Objectives.Select(o => o.Name()).ToArray());
        Compare("constraints", Constraints, other.Constraints);
        Compare("sampler", Sampler, other.Sampler);
        Compare("seed", Seed, other.Seed);
        Compare("criterion", Criterion, other.Criterion);
        Compare("search space", Space, other.Space);
        Compare("fidelity", Fidelity, other.Fidelity);
        Compare("devices", Devices, other.Devices);
        Compare("classes", Classes, other.Classes);
        Compare("class subset", ClassSubset, other.ClassSubset);
        return problems;
    }
}

/// <summary>
/// The study on disk (SQLite, <c>study.db</c>): its definition, the baseline, and every trial, written as soon as the
/// trial (or one of its stages) ends, in one transaction. A killed search loses at most the trials in flight, and a
/// resumed one rebuilds its sampler from the stored trials. Safe to share between threads; WAL mode lets readers
/// (<c>report</c>, <c>studies list</c>) open it while a search writes. One process writes a study at a time
/// (<see cref="WriterLock"/>: a second <c>search --resume</c> is refused, naming the first), and trial numbers come from
/// the store (<see cref="NewTrial"/>), not from the process.
/// </summary>
public sealed class StudyStore : IDisposable
{
    /// <summary>Relaxed escaping: settings such as "macs<=0.5×baseline" stay readable in the file and in messages.</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    const int SchemaVersion = 1;
    const string Kind = "study", Table = "study";

    readonly RunStoreFile file;

    StudyStore(RunStoreFile file) => this.file = file;

    public string Path => file.Path;

    /// <summary>Whether this instance holds the study's writer lock (<see cref="Create"/>, <see cref="OpenForWriting"/>).</summary>
    public bool IsWriter => file.IsWriter;

    /// <summary>Creates a new study file (the directory too) and holds its writer lock. Refuses to overwrite an existing study.</summary>
    /// <exception cref="StoreInUseException">Another process is creating or writing a study there.</exception>
    public static StudyStore Create(string path, StudyDefinition definition)
    {
        var store = new StudyStore(RunStoreFile.Create(path, Kind, Table, """
            CREATE TABLE trials (number INTEGER PRIMARY KEY, state TEXT NOT NULL, sampler TEXT NOT NULL, kept TEXT NOT NULL,
                                 stages TEXT NOT NULL, error TEXT, started TEXT NOT NULL, updated TEXT NOT NULL);
            """, SchemaVersion));
        store.file.Put("definition", JsonSerializer.Serialize(definition, JsonOptions));
        return store;
    }

    /// <summary>Opens an existing study to read it (a report, a listing), beside a search that may be writing it.</summary>
    /// <exception cref="FileNotFoundException">No study there.</exception>
    /// <exception cref="InvalidDataException">The file is not a study store (or a newer schema); the message says which.</exception>
    public static StudyStore Open(string path) => Open(path, write: false);

    /// <summary>Opens an existing study to continue it, holding its writer lock until disposed.</summary>
    /// <exception cref="StoreInUseException">Another process is writing it; the message names that process.</exception>
    public static StudyStore OpenForWriting(string path) => Open(path, write: true);

    /// <summary>Whether a process is writing the study at <paramref name="path"/> now (a killed one is not).</summary>
    public static bool IsBeingWritten(string path) => WriterLock.IsHeld(System.IO.Path.GetFullPath(path));

    static StudyStore Open(string path, bool write)
    {
        var store = new StudyStore(RunStoreFile.Open(path, Kind, Table, SchemaVersion, write));
        try
        {
            _ = store.Definition;
            store.file.Read(c => c.CommandText = "SELECT count(*) FROM trials;", c => c.ExecuteScalar()); // a damaged file fails here, not mid-report
            return store;
        }
        catch (Exception e)
        {
            store.Dispose();
            if (e is SqliteException s && !Storage.IsFull(s))
                throw new InvalidDataException($"{path} is not a study store, or a damaged one (left as it is): {e.Message}", e);
            if (e is JsonException)
                throw new InvalidDataException($"{path} holds a study definition that cannot be read (left as it is): {e.Message}", e);
            throw;
        }
    }

    public StudyDefinition Definition => JsonSerializer.Deserialize<StudyDefinition>(file.Get("definition")
        ?? throw new InvalidDataException($"{Path} has no study definition"), JsonOptions)!;

    public DateTimeOffset Created => file.Created;

    /// <summary>The process that last wrote the study, in words (<see cref="WriterLock.Describe"/>).</summary>
    public string? Writer => file.Get("writer");

    /// <summary>The trial budget grows when a study is resumed with more trials.</summary>
    public void UpdateTrialBudget(int trials) => file.Put("definition", JsonSerializer.Serialize(Definition with { Trials = trials }, JsonOptions));

    /// <summary>The unpruned model's values (the reference of relative constraints and of the hypervolume).</summary>
    public StageResult? Baseline
    {
        get => file.Get("baseline") is { } json ? JsonSerializer.Deserialize<StageResult>(json, JsonOptions) : null;
        set => file.Put("baseline", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>The search dimensions (names, sizes, groups), so reports can label configurations without the model.</summary>
    public IReadOnlyList<SearchDimension>? Dimensions
    {
        get => file.Get("dimensions") is { } json ? JsonSerializer.Deserialize<List<SearchDimension>>(json, JsonOptions) : null;
        set => file.Put("dimensions", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>The settings the study was started with, as its front end recorded them (option → values; see
    /// <see cref="PruningSearchOptions.Invocation"/>); null when none were recorded.</summary>
    public IReadOnlyDictionary<string, string[]>? Invocation
    {
        get => file.Get("invocation") is { } json ? JsonSerializer.Deserialize<Dictionary<string, string[]>>(json, JsonOptions) : null;
        set => file.Put("invocation", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>As the search last wrote it: "running", "stopped", "finished" (see <see cref="LiveStatus"/>).</summary>
    public string Status
    {
        get => file.Get("status") ?? "created";
        set => file.Put("status", value);
    }

    /// <summary><see cref="Status"/>, with a "running" study that no process writes any more told as "killed".</summary>
    public string LiveStatus => Status == "running" && !IsWriter && !IsBeingWritten(Path) ? "killed" : Status;

    /// <summary>Stores a new running trial under the next free number, allocated by the store in the same statement
    /// (so numbers never collide, whoever writes).</summary>
    public Trial NewTrial(string sampler, int[] kept)
    {
        var started = DateTimeOffset.UtcNow;
        int number = file.Write(c =>
        {
            c.CommandText = """
                INSERT INTO trials (number, state, sampler, kept, stages, error, started, updated)
                SELECT coalesce(max(number) + 1, 0), $state, $sampler, $kept, '[]', NULL, $started, $started FROM trials
                RETURNING number
                """;
            c.Parameters.AddWithValue("$state", TrialState.Running.ToString());
            c.Parameters.AddWithValue("$sampler", sampler);
            c.Parameters.AddWithValue("$kept", JsonSerializer.Serialize(kept, JsonOptions));
            c.Parameters.AddWithValue("$started", started.ToString("O"));
        }, c => Convert.ToInt32(c.ExecuteScalar(), CultureInfo.InvariantCulture));
        return new Trial(number, sampler, kept, TrialState.Running, [], null, started);
    }

    public void Save(Trial trial) => file.Write(c =>
    {
        c.CommandText = """
            INSERT INTO trials (number, state, sampler, kept, stages, error, started, updated) VALUES ($n, $state, $sampler, $kept, $stages, $error, $started, $updated)
            ON CONFLICT(number) DO UPDATE SET state = excluded.state, sampler = excluded.sampler, kept = excluded.kept, stages = excluded.stages,
                                              error = excluded.error, started = excluded.started, updated = excluded.updated
            """;
        c.Parameters.AddWithValue("$n", trial.Number);
        c.Parameters.AddWithValue("$state", trial.State.ToString());
        c.Parameters.AddWithValue("$sampler", trial.Sampler);
        c.Parameters.AddWithValue("$kept", JsonSerializer.Serialize(trial.Kept, JsonOptions));
        c.Parameters.AddWithValue("$stages", JsonSerializer.Serialize(trial.Stages, JsonOptions));
        c.Parameters.AddWithValue("$error", (object?)trial.Error ?? DBNull.Value);
        c.Parameters.AddWithValue("$started", trial.Started.ToString("O"));
        c.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToString("O"));
    }, c => c.ExecuteNonQuery());

    /// <summary>All trials, by number.</summary>
    public IReadOnlyList<Trial> Trials() => file.Read(c => c.CommandText = "SELECT number, state, sampler, kept, stages, error, started FROM trials ORDER BY number", c =>
    {
        using var reader = c.ExecuteReader();
        var trials = new List<Trial>();
        while (reader.Read())
        {
            int number = reader.GetInt32(0);
            try
            {
                trials.Add(new Trial(number, reader.GetString(2), JsonSerializer.Deserialize<int[]>(reader.GetString(3), JsonOptions)!,
                    Enum.Parse<TrialState>(reader.GetString(1)), JsonSerializer.Deserialize<List<StageResult>>(reader.GetString(4), JsonOptions)!,
                    reader.IsDBNull(5) ? null : reader.GetString(5), DateTimeOffset.Parse(reader.GetString(6), CultureInfo.InvariantCulture)));
            }
            catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
            {
                throw new InvalidDataException($"{Path}: trial {number} cannot be read: {e.Message}", e);
            }
        }
        return trials;
    });

    public void Dispose() => file.Dispose();
}
