using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ParetoPrune.Optimizer.Sampling;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// A study in one SQLite file (<c>study.db</c>), the zero-setup default. One process writes it at a time
/// (<see cref="WriterLock"/>: a second <c>search --resume</c> is refused, naming the first); any number of workers
/// inside that process share it. Readers (<c>report</c>, <c>studies list</c>) open it while a search writes (WAL).
/// Heartbeats are by this machine's clock, which every worker of the file shares.
/// </summary>
sealed class SqliteStudyStore : IStudyStore
{
    internal const int SchemaVersion = 2;
    const string Kind = "study", Table = "study";

    const string TaskTables = """
        CREATE TABLE IF NOT EXISTS tasks (trial INTEGER NOT NULL, stage TEXT NOT NULL, worker TEXT, claimed TEXT, attempts INTEGER NOT NULL DEFAULT 0,
                                          done INTEGER NOT NULL DEFAULT 0, completed_by TEXT, PRIMARY KEY (trial, stage));
        CREATE TABLE IF NOT EXISTS workers (id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, process_started TEXT NOT NULL,
                                            description TEXT NOT NULL, started TEXT NOT NULL, heartbeat REAL NOT NULL, retired INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE IF NOT EXISTS artifacts (name TEXT PRIMARY KEY, data BLOB NOT NULL);
        """;

    readonly RunStoreFile file;
    /// <summary>False only for a reader of a schema-1 file (a writer upgrades it on opening): it has no tasks, workers or artifacts.</summary>
    readonly bool hasTasks;

    SqliteStudyStore(RunStoreFile file)
    {
        this.file = file;
        hasTasks = file.Read(c => c.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'tasks'", c => Convert.ToInt32(c.ExecuteScalar(), CultureInfo.InvariantCulture)) > 0;
    }

    public static SqliteStudyStore Create(string path) => new(RunStoreFile.Create(path, Kind, Table, """
        CREATE TABLE trials (number INTEGER PRIMARY KEY, state TEXT NOT NULL, sampler TEXT NOT NULL, kept TEXT NOT NULL,
                             stages TEXT NOT NULL, error TEXT, started TEXT NOT NULL, updated TEXT NOT NULL);
        """ + TaskTables, SchemaVersion));

    public static SqliteStudyStore Open(string path, bool write) => new(RunStoreFile.Open(path, Kind, Table, SchemaVersion, write, Upgrade));

    /// <summary>Schema 1 (before workers) had no tasks: each stored stage becomes a done task, each running trial an unowned one.</summary>
    static void Upgrade(Func<SqliteCommand> command, int from)
    {
        using (var create = command())
        {
            create.CommandText = TaskTables;
            create.ExecuteNonQuery();
        }
        var trials = new List<Trial>();
        using (var read = command())
        {
            read.CommandText = "SELECT number, state, sampler, kept, stages, error, started FROM trials";
            using var reader = read.ExecuteReader();
            while (reader.Read()) trials.Add(ReadTrial(reader, "(upgrading)"));
        }
        foreach (var trial in trials)
        {
            var done = new List<(SearchStage Stage, bool Done)> { (SearchStage.Screening, trial.State != TrialState.Running) };
            done.AddRange(trial.Stages.Where(s => s.Stage != SearchStage.Screening).Select(s => (s.Stage, true)));
            foreach (var stage in new[] { SearchStage.Promotion, SearchStage.Final })
                if (trial.Error?.StartsWith(stage + ":", StringComparison.Ordinal) == true) done.Add((stage, true));
            foreach (var (stage, isDone) in done)
            {
                using var insert = command();
                insert.CommandText = "INSERT OR IGNORE INTO tasks (trial, stage, attempts, done) VALUES ($t, $s, 1, $d)";
                insert.Parameters.AddWithValue("$t", trial.Number);
                insert.Parameters.AddWithValue("$s", stage.ToString());
                insert.Parameters.AddWithValue("$d", isDone ? 1 : 0);
                insert.ExecuteNonQuery();
            }
        }
    }

    public string Location => file.Path;
    public bool IsShared => false;
    public DateTimeOffset Created => file.Created;
    public bool IsWriter => file.IsWriter;

    public string? LiveWriter(TimeSpan heartbeatTimeout) =>
        IsWriter || WriterLock.IsHeld(System.IO.Path.GetFullPath(Location)) ? Get("writer") ?? "a process on this machine" : null;

    public void Delete()
    {
        if (!IsWriter) throw new InvalidOperationException($"{Location} is open for reading: only its writer may delete it");
        string path = Location;
        file.Dispose(); // closes the connections and releases the writer lock
        foreach (string leftover in new[] { path, path + "-wal", path + "-shm", WriterLock.PathFor(path) })
            if (File.Exists(leftover)) File.Delete(leftover);
    }

    public string? Get(string key) => file.Get(key);
    public void Put(string key, string value) => file.Put(key, value);

    public string PutIfAbsent(string key, string value) => file.Transaction(command =>
    {
        using var insert = command();
        insert.CommandText = $"INSERT INTO {Table} (key, value) VALUES ($key, $value) ON CONFLICT(key) DO NOTHING";
        insert.Parameters.AddWithValue("$key", key);
        insert.Parameters.AddWithValue("$value", value);
        insert.ExecuteNonQuery();
        using var read = command();
        read.CommandText = $"SELECT value FROM {Table} WHERE key = $key";
        read.Parameters.AddWithValue("$key", key);
        return (string)read.ExecuteScalar()!;
    });

    public Trial? Propose(string worker, Func<IReadOnlyList<Trial>, Proposal?> propose) => file.Transaction(command =>
    {
        using var read = command();
        var trials = ReadTrials(read);
        if (propose(trials) is not { } proposal) return null;
        var trial = new Trial(trials.Count == 0 ? 0 : trials[^1].Number + 1, proposal.Sampler, proposal.Kept, TrialState.Running, [], null, DateTimeOffset.UtcNow);
        using (var insert = command())
        {
            Prepare(insert, trial, insertOnly: true);
            insert.ExecuteNonQuery();
        }
        using (var task = command())
        {
            task.CommandText = "INSERT INTO tasks (trial, stage, worker, claimed, attempts) VALUES ($t, $s, $w, $c, 1)";
            AddTask(task, trial.Number, SearchStage.Screening);
            task.Parameters.AddWithValue("$w", worker);
            task.Parameters.AddWithValue("$c", DateTimeOffset.UtcNow.ToString("O"));
            task.ExecuteNonQuery();
        }
        return trial;
    });

    public IReadOnlyList<Trial> Trials() => file.Read(_ => { }, ReadTrials);

    public void Save(Trial trial) => file.Write(c => Prepare(c, trial, insertOnly: false), c => c.ExecuteNonQuery());

    public void AddTasks(SearchStage stage, IEnumerable<int> trials)
    {
        var numbers = trials.ToList();
        if (numbers.Count == 0) return;
        file.Transaction(command =>
        {
            foreach (int number in numbers)
            {
                using var insert = command();
                insert.CommandText = "INSERT OR IGNORE INTO tasks (trial, stage) VALUES ($t, $s)";
                AddTask(insert, number, stage);
                insert.ExecuteNonQuery();
            }
            return 0;
        });
    }

    public WorkItem? Claim(string worker, SearchStage stage, IReadOnlyCollection<int> among, TimeSpan heartbeatTimeout)
    {
        if (among.Count == 0) return null;
        return file.Transaction(command =>
        {
            using var find = command();
            find.CommandText = """
                SELECT t.trial FROM tasks t LEFT JOIN workers w ON w.id = t.worker
                WHERE t.stage = $s AND t.done = 0 AND t.trial IN (SELECT value FROM json_each($among))
                  AND (t.worker IS NULL OR w.id IS NULL OR w.retired = 1 OR w.heartbeat < $cutoff)
                ORDER BY t.trial LIMIT 1
                """;
            find.Parameters.AddWithValue("$s", stage.ToString());
            find.Parameters.AddWithValue("$among", JsonSerializer.Serialize(among));
            find.Parameters.AddWithValue("$cutoff", UnixSeconds(DateTimeOffset.UtcNow - heartbeatTimeout));
            if (find.ExecuteScalar() is not long trial) return null;
            using var claim = command();
            claim.CommandText = """
                UPDATE tasks SET worker = $w, claimed = $c, attempts = attempts + 1 WHERE trial = $t AND stage = $s
                RETURNING trial, stage, worker, attempts, done, completed_by
                """;
            AddTask(claim, (int)trial, stage);
            claim.Parameters.AddWithValue("$w", worker);
            claim.Parameters.AddWithValue("$c", DateTimeOffset.UtcNow.ToString("O"));
            using var reader = claim.ExecuteReader();
            reader.Read();
            return ReadTask(reader);
        });
    }

    public bool Complete(Trial trial, SearchStage stage, string worker) => file.Transaction(command =>
    {
        using var mark = command();
        mark.CommandText = """
            INSERT INTO tasks (trial, stage, worker, claimed, attempts, done, completed_by) VALUES ($t, $s, $w, $c, 1, 1, $w)
            ON CONFLICT (trial, stage) DO UPDATE SET done = 1, completed_by = excluded.completed_by WHERE tasks.done = 0
            """;
        AddTask(mark, trial.Number, stage);
        mark.Parameters.AddWithValue("$w", worker);
        mark.Parameters.AddWithValue("$c", DateTimeOffset.UtcNow.ToString("O"));
        if (mark.ExecuteNonQuery() == 0) return false;
        using var save = command();
        Prepare(save, trial, insertOnly: false);
        save.ExecuteNonQuery();
        return true;
    });

    public IReadOnlyList<WorkItem> Tasks() => !hasTasks ? [] : file.Read(
        c => c.CommandText = "SELECT trial, stage, worker, attempts, done, completed_by FROM tasks ORDER BY stage, trial", c =>
        {
            using var reader = c.ExecuteReader();
            var items = new List<WorkItem>();
            while (reader.Read()) items.Add(ReadTask(reader));
            return items;
        });

    public void Register(WorkerRecord worker) => file.Write(c =>
    {
        c.CommandText = """
            INSERT INTO workers (id, host, pid, process_started, description, started, heartbeat, retired)
            VALUES ($id, $host, $pid, $ps, $d, $started, $hb, 0)
            """;
        c.Parameters.AddWithValue("$id", worker.Id);
        c.Parameters.AddWithValue("$host", worker.Host);
        c.Parameters.AddWithValue("$pid", worker.ProcessId);
        c.Parameters.AddWithValue("$ps", worker.ProcessStarted.ToString("O"));
        c.Parameters.AddWithValue("$d", worker.Description);
        c.Parameters.AddWithValue("$started", DateTimeOffset.UtcNow.ToString("O"));
        c.Parameters.AddWithValue("$hb", UnixSeconds(DateTimeOffset.UtcNow));
    }, c => c.ExecuteNonQuery());

    public void Heartbeat(string worker) => SetWorker(worker, "heartbeat = $now");

    public void Retire(string worker) => SetWorker(worker, "retired = 1");

    void SetWorker(string worker, string assignment) => file.Write(c =>
    {
        c.CommandText = $"UPDATE workers SET {assignment} WHERE id = $id";
        c.Parameters.AddWithValue("$id", worker);
        c.Parameters.AddWithValue("$now", UnixSeconds(DateTimeOffset.UtcNow));
    }, c => c.ExecuteNonQuery());

    public IReadOnlyList<WorkerRecord> Workers() => !hasTasks ? [] : file.Read(
        c => c.CommandText = "SELECT id, host, pid, process_started, description, started, heartbeat, retired FROM workers ORDER BY started", c =>
        {
            using var reader = c.ExecuteReader();
            var workers = new List<WorkerRecord>();
            while (reader.Read())
                workers.Add(new WorkerRecord(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture),
                    reader.GetString(4), DateTimeOffset.Parse(reader.GetString(5), CultureInfo.InvariantCulture),
                    DateTimeOffset.FromUnixTimeMilliseconds((long)(reader.GetDouble(6) * 1000)), reader.GetInt32(7) != 0));
            return workers;
        });

    public void PutArtifact(string name, byte[] data) => file.Write(c =>
    {
        c.CommandText = "INSERT INTO artifacts (name, data) VALUES ($n, $d) ON CONFLICT(name) DO UPDATE SET data = excluded.data";
        c.Parameters.AddWithValue("$n", name);
        c.Parameters.AddWithValue("$d", data);
    }, c => c.ExecuteNonQuery());

    public byte[]? GetArtifact(string name) => !hasTasks ? null : file.Read(c =>
    {
        c.CommandText = "SELECT data FROM artifacts WHERE name = $n";
        c.Parameters.AddWithValue("$n", name);
    }, c => c.ExecuteScalar() as byte[]);

    public void Dispose() => file.Dispose();

    static double UnixSeconds(DateTimeOffset time) => time.ToUnixTimeMilliseconds() / 1000.0;

    static void AddTask(SqliteCommand command, int trial, SearchStage stage)
    {
        command.Parameters.AddWithValue("$t", trial);
        command.Parameters.AddWithValue("$s", stage.ToString());
    }

    static WorkItem ReadTask(SqliteDataReader reader) => new(reader.GetInt32(0), Enum.Parse<SearchStage>(reader.GetString(1)),
        reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3), reader.GetInt32(4) != 0, reader.IsDBNull(5) ? null : reader.GetString(5));

    static void Prepare(SqliteCommand c, Trial trial, bool insertOnly)
    {
        c.CommandText = """
            INSERT INTO trials (number, state, sampler, kept, stages, error, started, updated) VALUES ($n, $state, $sampler, $kept, $stages, $error, $started, $updated)
            """ + (insertOnly ? "" : """

            ON CONFLICT(number) DO UPDATE SET state = excluded.state, sampler = excluded.sampler, kept = excluded.kept, stages = excluded.stages,
                                              error = excluded.error, started = excluded.started, updated = excluded.updated
            """);
        c.Parameters.AddWithValue("$n", trial.Number);
        c.Parameters.AddWithValue("$state", trial.State.ToString());
        c.Parameters.AddWithValue("$sampler", trial.Sampler);
        c.Parameters.AddWithValue("$kept", JsonSerializer.Serialize(trial.Kept, StudyStore.JsonOptions));
        c.Parameters.AddWithValue("$stages", JsonSerializer.Serialize(trial.Stages, StudyStore.JsonOptions));
        c.Parameters.AddWithValue("$error", (object?)trial.Error ?? DBNull.Value);
        c.Parameters.AddWithValue("$started", trial.Started.ToString("O"));
        c.Parameters.AddWithValue("$updated", DateTimeOffset.UtcNow.ToString("O"));
    }

    List<Trial> ReadTrials(SqliteCommand c)
    {
        c.CommandText = "SELECT number, state, sampler, kept, stages, error, started FROM trials ORDER BY number";
        using var reader = c.ExecuteReader();
        var trials = new List<Trial>();
        while (reader.Read()) trials.Add(ReadTrial(reader, file.Path));
        return trials;
    }

    static Trial ReadTrial(SqliteDataReader reader, string path) => StudyStore.ReadTrial(reader.GetInt32(0), reader.GetString(1), reader.GetString(2),
        reader.GetString(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6), path);
}
