using System.Globalization;
using Microsoft.Data.Sqlite;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// The SQLite file under a run store (<see cref="StudyStore"/>, and the comparison's store): a key–value
/// table beside the store's own tables, WAL so readers open it while a run writes, one writer at a time
/// (<see cref="WriterLock"/>), and a full disk or a damaged file said in words, never rewritten.
/// </summary>
sealed class RunStoreFile : IDisposable
{
    readonly SqliteConnection connection;
    readonly Lock gate = new();
    readonly WriterLock? writer;
    readonly string table, kind;

    RunStoreFile(string path, string kind, string table, bool create, WriterLock? writer)
    {
        (Path, this.kind, this.table, this.writer) = (path, kind, table, writer);
        var builder = new SqliteConnectionStringBuilder { DataSource = path, Mode = create ? SqliteOpenMode.ReadWriteCreate : SqliteOpenMode.ReadWrite, Pooling = false };
        connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            // Only a writer sets the journal mode (it is stored in the file, so readers find it): setting it writes, and a
            // reader (studies list, report, the dashboard) must leave every file as it found it.
            Run(c => c.CommandText = writer is null ? "PRAGMA busy_timeout=10000;" : "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000;",
                c => c.ExecuteNonQuery());
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>A new file holding <paramref name="schema"/> (the key–value table is added, with the schema's version and
    /// the creation time), with the writer lock held.</summary>
    /// <param name="kind">"study", "comparison": for messages.</param>
    public static RunStoreFile Create(string path, string kind, string table, string schema, int version)
    {
        path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        var writer = WriterLock.Acquire(path, () => Holder(path, kind, table));
        if (File.Exists(path))
        {
            writer.Dispose();
            throw new InvalidOperationException($"{path} already holds a {kind}; resume it or choose another output directory");
        }
        var file = new RunStoreFile(path, kind, table, create: true, writer);
        file.Execute($"CREATE TABLE {table} (key TEXT PRIMARY KEY, value TEXT NOT NULL);\n{schema}");
        file.Put("schema", version.ToString(CultureInfo.InvariantCulture));
        file.Put("created", DateTimeOffset.UtcNow.ToString("O"));
        file.Put("writer", WriterLock.Describe());
        return file;
    }

    /// <summary>An existing file, to read (<paramref name="write"/> false) or to continue writing (the lock held, or refused naming its holder).</summary>
    /// <exception cref="FileNotFoundException">No file there.</exception>
    /// <exception cref="StoreInUseException">To write, while another process writes.</exception>
    /// <exception cref="InvalidDataException">Not an SQLite file, a damaged one, or another schema version (left as it is).</exception>
    /// <param name="upgrade">Brings a file of an older schema (its version given) up to <paramref name="version"/>, when opened to
    /// write; null reads only this version. A reader of an older file reads it as it is.</param>
    public static RunStoreFile Open(string path, string kind, string table, int version, bool write, Action<Func<SqliteCommand>, int>? upgrade = null)
    {
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"no {kind} at {path}", path);
        if (new FileInfo(path).Length == 0) throw new InvalidDataException($"{path} is empty: not a {kind} store (left as it is)");
        var writer = write ? WriterLock.Acquire(path, () => Holder(path, kind, table)) : null;
        try
        {
            var file = new RunStoreFile(path, kind, table, create: false, writer);
            try
            {
                string? schema = file.Get("schema");
                bool older = upgrade is not null && int.TryParse(schema, CultureInfo.InvariantCulture, out int found) && found >= 1 && found < version;
                if (schema != version.ToString(CultureInfo.InvariantCulture) && !older)
                    throw new InvalidDataException($"{path} has {kind} schema {schema ?? "(none)"}; this version reads schema {version}");
                if (older && write)
                {
                    file.Transaction(command =>
                    {
                        upgrade!(command, int.Parse(schema!, CultureInfo.InvariantCulture));
                        return 0;
                    });
                    file.Put("schema", version.ToString(CultureInfo.InvariantCulture));
                }
                if (write) file.Put("writer", WriterLock.Describe());
                return file;
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
        catch (SqliteException e) when (!Storage.IsFull(e))
        {
            writer?.Dispose();
            throw new InvalidDataException($"{path} is not a {kind} store, or a damaged one (left as it is): {e.Message}", e);
        }
        catch
        {
            writer?.Dispose();
            throw;
        }
    }

    static string? Holder(string path, string kind, string table)
    {
        if (!File.Exists(path)) return null;
        using var file = new RunStoreFile(path, kind, table, create: false, writer: null);
        return file.Get("writer");
    }

    public bool IsWriter => writer is not null;

    public DateTimeOffset Created => DateTimeOffset.Parse(Get("created") ?? throw new InvalidDataException($"{Path} has no creation time"), CultureInfo.InvariantCulture);

    public string? Get(string key) => Read(c =>
    {
        c.CommandText = $"SELECT value FROM {table} WHERE key = $key";
        c.Parameters.AddWithValue("$key", key);
    }, c => c.ExecuteScalar() as string);

    public void Put(string key, string value) => Write(c =>
    {
        c.CommandText = $"INSERT INTO {table} (key, value) VALUES ($key, $value) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        c.Parameters.AddWithValue("$key", key);
        c.Parameters.AddWithValue("$value", value);
    }, c => c.ExecuteNonQuery());

    public void Execute(string sql) => Write(c => c.CommandText = sql, c => c.ExecuteNonQuery());

    /// <summary>A query; a damaged file is said in words.</summary>
    public T Read<T>(Action<SqliteCommand> prepare, Func<SqliteCommand, T> run)
    {
        try
        {
            return Run(prepare, run);
        }
        catch (SqliteException e) when (e.SqliteErrorCode is 11 or 26) // SQLITE_CORRUPT, SQLITE_NOTADB
        {
            throw new InvalidDataException($"{Path} is a damaged {kind} store (left as it is): {e.Message}", e);
        }
    }

    /// <summary>A change, by the writer only (a reader that wrote would race the run holding the lock); SQLite rolls a
    /// failed statement back, so a full disk leaves the store as it was.</summary>
    public T Write<T>(Action<SqliteCommand> prepare, Func<SqliteCommand, T> run)
    {
        if (writer is null) throw new InvalidOperationException($"{Path} was opened to read; open it to write to change it");
        try
        {
            return Run(prepare, run);
        }
        catch (SqliteException e) when (Storage.IsFull(e))
        {
            throw Storage.Full(System.IO.Path.GetDirectoryName(Path)!, $"the {kind} is intact up to its last stored result: free some space and resume", e);
        }
    }

    /// <summary>Several statements as one change, by the writer only: <c>BEGIN IMMEDIATE</c>, so what the body reads cannot
    /// change before it writes; rolled back if the body throws.</summary>
    /// <param name="body">Gets a factory of commands enlisted in the transaction.</param>
    public T Transaction<T>(Func<Func<SqliteCommand>, T> body)
    {
        if (writer is null) throw new InvalidOperationException($"{Path} was opened to read; open it to write to change it");
        try
        {
            lock (gate)
            {
                using var transaction = connection.BeginTransaction(deferred: false);
                var result = body(() =>
                {
                    var command = connection.CreateCommand();
                    command.Transaction = transaction;
                    return command;
                });
                transaction.Commit();
                return result;
            }
        }
        catch (SqliteException e) when (Storage.IsFull(e))
        {
            throw Storage.Full(System.IO.Path.GetDirectoryName(Path)!, $"the {kind} is intact up to its last stored result: free some space and resume", e);
        }
    }

    T Run<T>(Action<SqliteCommand> prepare, Func<SqliteCommand, T> run)
    {
        lock (gate)
        {
            using var command = connection.CreateCommand();
            prepare(command);
            return run(command);
        }
    }

    public void Dispose()
    {
        connection.Dispose();
        writer?.Dispose();
    }
}
