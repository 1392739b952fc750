using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>
/// A comparison on disk (SQLite, <c>comparison.db</c>): its definition, the specialised base models, and every point,
/// written in one statement as soon as it is evaluated, so a killed run loses at most the point in flight. WAL mode lets
/// a reader open it while a run writes. Follows <see cref="Search.StudyStore"/>.
/// </summary>
public sealed class ComparisonStore : IDisposable
{
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false };
    const int SchemaVersion = 1;

    readonly SqliteConnection connection;
    readonly Lock gate = new();

    ComparisonStore(string path, bool create)
    {
        Path = System.IO.Path.GetFullPath(path);
        var builder = new SqliteConnectionStringBuilder { DataSource = Path, Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite, Pooling = false };
        connection = new SqliteConnection(builder.ToString());
        connection.Open();
        Execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;");
    }

    public string Path { get; }

    /// <summary>Creates a new comparison file (the directory too). Refuses to overwrite an existing one.</summary>
    public static ComparisonStore Create(string path, ComparisonDefinition definition)
    {
        if (File.Exists(path)) throw new InvalidOperationException($"{path} already holds a comparison; resume it or choose another output directory");
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var store = new ComparisonStore(path, create: true);
        store.Execute("""
            CREATE TABLE comparison (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE bases (task TEXT PRIMARY KEY, model BLOB NOT NULL);
            CREATE TABLE points (task TEXT NOT NULL, method TEXT NOT NULL, amount TEXT NOT NULL, point TEXT NOT NULL, updated TEXT NOT NULL,
                                 PRIMARY KEY (task, method, amount));
            """);
        store.Put("schema", SchemaVersion.ToString(CultureInfo.InvariantCulture));
        store.Put("created", DateTimeOffset.UtcNow.ToString("O"));
        store.Definition = definition;
        return store;
    }

    /// <summary>Opens an existing comparison.</summary>
    /// <exception cref="FileNotFoundException">No comparison there.</exception>
    /// <exception cref="InvalidDataException">The file is not a comparison store (or a newer schema).</exception>
    public static ComparisonStore Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no comparison at {path}", path);
        ComparisonStore? store = null;
        try
        {
            store = new ComparisonStore(path, create: false);
            string? schema = store.Get("schema");
            if (schema != SchemaVersion.ToString(CultureInfo.InvariantCulture))
                throw new InvalidDataException($"{path} has comparison schema {schema ?? "(none)"}; this version reads schema {SchemaVersion}");
            _ = store.Definition;
            return store;
        }
        catch (SqliteException e)
        {
            store?.Dispose();
            throw new InvalidDataException($"{path} is not a comparison store: {e.Message}", e);
        }
        catch
        {
            store?.Dispose();
            throw;
        }
    }

    /// <summary>What every stored point was evaluated with (the accuracy tolerance may change on resume; it only affects the analysis).</summary>
    public ComparisonDefinition Definition
    {
        get => JsonSerializer.Deserialize<ComparisonDefinition>(Get("definition") ?? throw new InvalidDataException($"{Path} has no comparison definition"), JsonOptions)!;
        set => Put("definition", JsonSerializer.Serialize(value, JsonOptions));
    }

    /// <summary>"running", "stopped" or "finished".</summary>
    public string Status
    {
        get => Get("status") ?? "created";
        set => Put("status", value);
    }

    /// <summary>The base model a task's points were pruned from (the specialised model of a class subset), as ONNX bytes.</summary>
    public byte[]? Base(string task)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT model FROM bases WHERE task = $task";
            command.Parameters.AddWithValue("$task", task);
            return command.ExecuteScalar() as byte[];
        }
    }

    public void SaveBase(string task, byte[] model)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO bases (task, model) VALUES ($task, $model) ON CONFLICT(task) DO UPDATE SET model = excluded.model";
            command.Parameters.AddWithValue("$task", task);
            command.Parameters.AddWithValue("$model", model);
            command.ExecuteNonQuery();
        }
    }

    public void Save(ComparisonPoint point)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = """
                INSERT INTO points (task, method, amount, point, updated) VALUES ($task, $method, $amount, $point, $updated)
                ON CONFLICT(task, method, amount) DO UPDATE SET point = excluded.point, updated = excluded.updated
                """;
            command.Parameters.AddWithValue("$task", point.Task);
            command.Parameters.AddWithValue("$method", point.Method);
            command.Parameters.AddWithValue("$amount", AmountKey(point.Amount));
            command.Parameters.AddWithValue("$point", JsonSerializer.Serialize(point, JsonOptions));
            command.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToString("O"));
            command.ExecuteNonQuery();
        }
    }

    /// <summary>Every stored point (baselines included), in the order they were written.</summary>
    public IReadOnlyList<ComparisonPoint> Points()
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT task, method, amount, point FROM points ORDER BY rowid";
            using var reader = command.ExecuteReader();
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
        }
    }

    /// <summary>The key of an amount: its shortest round-trip text, so 0.1 parsed from "0.1" always finds the same row.</summary>
    internal static string AmountKey(double amount) => amount.ToString("R", CultureInfo.InvariantCulture);

    string? Get(string key)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT value FROM comparison WHERE key = $key";
            command.Parameters.AddWithValue("$key", key);
            return command.ExecuteScalar() as string;
        }
    }

    void Put(string key, string value)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO comparison (key, value) VALUES ($key, $value) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
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
