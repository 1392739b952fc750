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
/// (<c>report</c>, <c>studies list</c>) open it while a search writes.
/// </summary>
public sealed class StudyStore : IDisposable
{
    /// <summary>Relaxed escaping: settings such as "macs<=0.5×baseline" stay readable in the file and in messages.</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    const int SchemaVersion = 1;

    readonly SqliteConnection connection;
    readonly Lock gate = new();

    StudyStore(string path, bool create)
    {
        Path = System.IO.Path.GetFullPath(path);
        var builder = new SqliteConnectionStringBuilder { DataSource = Path, Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite, Pooling = false };
        connection = new SqliteConnection(builder.ToString());
        connection.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;");
    }

    public string Path { get; }

    /// <summary>Creates a new study file (the directory too). Refuses to overwrite an existing study.</summary>
    public static StudyStore Create(string path, StudyDefinition definition)
    {
        if (File.Exists(path)) throw new InvalidOperationException($"{path} already holds a study; resume it or choose another output directory");
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var store = new StudyStore(path, create: true);
        store.Execute("""
            CREATE TABLE study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE trials (number INTEGER PRIMARY KEY, state TEXT NOT NULL, sampler TEXT NOT NULL, kept TEXT NOT NULL,
                                 stages TEXT NOT NULL, error TEXT, started TEXT NOT NULL, updated TEXT NOT NULL);
            """);
        store.Put("schema", SchemaVersion.ToString(CultureInfo.InvariantCulture));
        store.Put("definition", JsonSerializer.Serialize(definition, JsonOptions));
        store.Put("created", DateTimeOffset.UtcNow.ToString("O"));
        return store;
    }

    /// <summary>Opens an existing study.</summary>
    /// <exception cref="FileNotFoundException">No study there.</exception>
    /// <exception cref="InvalidDataException">The file is not a study store (or a newer schema); the message says which.</exception>
    public static StudyStore Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no study at {path}", path);
        StudyStore? store = null;
        try
        {
            store = new StudyStore(path, create: false);
            string? schema = store.Get("schema");
            if (schema != SchemaVersion.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"{path} has study schema {schema ?? "(none)"}; this version reads schema {SchemaVersion}");
            _ = store.Definition;
            store.Execute("SELECT count(*) FROM trials;"); // the trials table is there (a damaged file fails here, not mid-report)
            return store;
        }
        catch (SqliteException e)
        {
            store?.Dispose();
            throw new InvalidDataException($"{path} is not a study store, or a damaged one (left as it is): {e.Message}", e);
        }
        catch (JsonException e)
        {
            store?.Dispose();
            throw new InvalidDataException($"{path} holds a study definition that cannot be read (left as it is): {e.Message}", e);
        }
        catch
        {
            store?.Dispose();
            throw;
        }
    }

    public StudyDefinition Definition => JsonSerializer.Deserialize<StudyDefinition>(Get("definition")
        ?? throw new InvalidDataException($"{Path} has no study definition"), JsonOptions)!;

    public DateTimeOffset Created => DateTimeOffset.Parse(Get("created") ?? throw new InvalidDataException($"{Path} has no creation time"), CultureInfo.InvariantCulture);

    /// <summary>The trial budget grows when a study is resumed with more trials.</summary>
    public void UpdateTrialBudget(int trials) => Put("definition", JsonSerializer.Serialize(Definition with { Trials = trials }, JsonOptions));

    /// <summary>The unpruned model's values (the reference of relative constraints and of the hypervolume).</summary>
    public StageResult? Baseline
    {
        get => Get("baseline") is { } json ? JsonSerializer.Deserialize<StageResult>(json, JsonOptions) : null;
        set => Put("baseline", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>The search dimensions (names, sizes, groups), so reports can label configurations without the model.</summary>
    public IReadOnlyList<SearchDimension>? Dimensions
    {
        get => Get("dimensions") is { } json ? JsonSerializer.Deserialize<List<SearchDimension>>(json, JsonOptions) : null;
        set => Put("dimensions", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>The settings the study was started with, as its front end recorded them (option → values; see
    /// <see cref="PruningSearchOptions.Invocation"/>); null when none were recorded.</summary>
    public IReadOnlyDictionary<string, string[]>? Invocation
    {
        get => Get("invocation") is { } json ? JsonSerializer.Deserialize<Dictionary<string, string[]>>(json, JsonOptions) : null;
        set => Put("invocation", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>Free text: "running", "stopped", "finished".</summary>
    public string Status
    {
        get => Get("status") ?? "created";
        set => Put("status", value);
    }

    public void Save(Trial trial)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO trials (number, state, sampler, kept, stages, error, started, updated) VALUES ($n, $state, $sampler, $kept, $stages, $error, $started, $updated)
                ON CONFLICT(number) DO UPDATE SET state = excluded.state, sampler = excluded.sampler, kept = excluded.kept, stages = excluded.stages,
                                                  error = excluded.error, started = excluded.started, updated = excluded.updated
                """;
            command.Parameters.AddWithValue("$n", trial.Number);
            command.Parameters.AddWithValue("$state", trial.State.ToString());
            command.Parameters.AddWithValue("$sampler", trial.Sampler);
            command.Parameters.AddWithValue("$kept", JsonSerializer.Serialize(trial.Kept, JsonOptions));
            command.Parameters.AddWithValue("$stages", JsonSerializer.Serialize(trial.Stages, JsonOptions));
            command.Parameters.AddWithValue("$error", (object?)trial.Error ?? DBNull.Value);
            command.Parameters.AddWithValue("$started", trial.Started.ToString("O"));
            command.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToString("O"));
            command.ExecuteNonQuery();
        }
    }

    /// <summary>All trials, by number.</summary>
    public IReadOnlyList<Trial> Trials()
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT number, state, sampler, kept, stages, error, started FROM trials ORDER BY number";
            using var reader = command.ExecuteReader();
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
        }
    }

    string? Get(string key)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT value FROM study WHERE key = $key";
            command.Parameters.AddWithValue("$key", key);
            return command.ExecuteScalar() as string;
        }
    }

    void Put(string key, string value)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO study (key, value) VALUES ($key, $value) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
            command.Parameters.AddWithValue("$key", key);
            command.Parameters.AddWithValue("$value", value);
            command.ExecuteNonQuery();
        }
    }

    void Execute(string sql)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = sql;
            command.ExecuteNonQuery();
        }
    }

    public void Dispose() => connection.Dispose();
}
