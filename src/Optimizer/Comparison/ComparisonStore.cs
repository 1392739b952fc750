using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>
/// A comparison on disk (SQLite, <c>comparison.db</c>): its definition, the specialised base models, and every point,
/// written in one statement as soon as it is evaluated, so a killed run loses at most the point in flight. WAL mode lets
/// a reader open it while a run writes. Follows <see cref="Search.StudyStore"/>.
/// </summary>
/// <remarks>
/// Not an <see cref="Search.IStudyStore"/>: a comparison is a fixed grid (method × amount) run by one process, with no
/// proposals, claims, workers or heartbeats to share, so the study contract would be all of it unused.
/// </remarks>
public sealed class ComparisonStore : IDisposable
{
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };
    const int SchemaVersion = 1;
    const string Kind = "comparison", Table = "comparison";

    readonly RunStoreFile file;

    ComparisonStore(RunStoreFile file) => this.file = file;

    public string Path => file.Path;

    /// <summary>Creates a new comparison file (the directory too), holding its writer lock. Refuses to overwrite an existing one.</summary>
    /// <exception cref="StoreInUseException">Another process is creating or writing a comparison there.</exception>
    public static ComparisonStore Create(string path, ComparisonDefinition definition)
    {
        var store = new ComparisonStore(RunStoreFile.Create(path, Kind, Table, """
            CREATE TABLE bases (task TEXT PRIMARY KEY, model BLOB NOT NULL);
            CREATE TABLE points (task TEXT NOT NULL, method TEXT NOT NULL, amount TEXT NOT NULL, point TEXT NOT NULL, updated TEXT NOT NULL,
                                 PRIMARY KEY (task, method, amount));
            """, SchemaVersion));
        store.Definition = definition;
        return store;
    }

    /// <summary>Opens an existing comparison to read it.</summary>
    /// <exception cref="FileNotFoundException">No comparison there.</exception>
    /// <exception cref="InvalidDataException">The file is not a comparison store (or a newer schema).</exception>
    public static ComparisonStore Open(string path) => Open(path, write: false);

    /// <summary>Opens an existing comparison to continue it, holding its writer lock until disposed.</summary>
    /// <exception cref="StoreInUseException">Another process is writing it; the message names that process.</exception>
    public static ComparisonStore OpenForWriting(string path) => Open(path, write: true);

    static ComparisonStore Open(string path, bool write)
    {
        var store = new ComparisonStore(RunStoreFile.Open(path, Kind, Table, SchemaVersion, write));
        try
        {
            _ = store.Definition;
            return store;
        }
        catch (Exception e)
        {
            store.Dispose();
            if (e is SqliteException or JsonException) throw new InvalidDataException($"{path} is not a comparison store, or a damaged one (left as it is): {e.Message}", e);
            throw;
        }
    }

    /// <summary>What every stored point was evaluated with (the accuracy tolerance may change on resume; it only affects the analysis).</summary>
    public ComparisonDefinition Definition
    {
        get => JsonSerializer.Deserialize<ComparisonDefinition>(file.Get("definition") ?? throw new InvalidDataException($"{Path} has no comparison definition"), JsonOptions)!;
        set => file.Put("definition", JsonSerializer.Serialize(value, JsonOptions));
    }

    /// <summary>Running, stopped or finished.</summary>
    public StudyStatus Status
    {
        get => StudyStatuses.Parse(file.Get("status"));
        set => file.Put("status", value.Name());
    }

    /// <summary>The base model a task's points were pruned from (the specialised model of a class subset), as ONNX bytes.</summary>
    public byte[]? Base(string task) => file.Read(c =>
    {
        c.CommandText = "SELECT model FROM bases WHERE task = $task";
        c.Parameters.AddWithValue("$task", task);
    }, c => c.ExecuteScalar() as byte[]);

    public void SaveBase(string task, byte[] model) => file.Write(c =>
    {
        c.CommandText = "INSERT INTO bases (task, model) VALUES ($task, $model) ON CONFLICT(task) DO UPDATE SET model = excluded.model";
        c.Parameters.AddWithValue("$task", task);
        c.Parameters.AddWithValue("$model", model);
    }, c => c.ExecuteNonQuery());

    public void Save(ComparisonPoint point) => file.Write(c =>
    {
        c.CommandText = """
            INSERT INTO points (task, method, amount, point, updated) VALUES ($task, $method, $amount, $point, $updated)
            ON CONFLICT(task, method, amount) DO UPDATE SET point = excluded.point, updated = excluded.updated
            """;
        c.Parameters.AddWithValue("$task", point.Task);
        c.Parameters.AddWithValue("$method", point.Method);
        c.Parameters.AddWithValue("$amount", AmountKey(point.Amount));
        c.Parameters.AddWithValue("$point", JsonSerializer.Serialize(point, JsonOptions));
        c.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToString("O"));
    }, c => c.ExecuteNonQuery());

    /// <summary>Every stored point (baselines included), in the order they were written.</summary>
    public IReadOnlyList<ComparisonPoint> Points() => file.Read(c => c.CommandText = "SELECT task, method, amount, point FROM points ORDER BY rowid", c =>
    {
        using var reader = c.ExecuteReader();
        var points = new List<ComparisonPoint>();
        while (reader.Read())
        {
            try
            {
                points.Add(JsonSerializer.Deserialize<ComparisonPoint>(reader.GetString(3), JsonOptions)!);
            }
            catch (JsonException e)
            {
                throw new InvalidDataException($"{Path}: point {reader.GetString(0)}/{reader.GetString(1)}/{reader.GetString(2)} cannot be read: {e.Message}", e);
            }
        }
        return points;
    });

    /// <summary>The key of an amount: its shortest round-trip text, so 0.1 parsed from "0.1" always finds the same row.</summary>
    internal static string AmountKey(double amount) => amount.ToString("R", CultureInfo.InvariantCulture);

    public void Dispose() => file.Dispose();
}
