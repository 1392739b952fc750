using System.Data;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using ParetoPrune.Optimizer.Sampling;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// A study on a PostgreSQL server, shared by worker processes on any number of machines. One database holds any number
/// of studies, by name, in tables prefixed <c>paretoprune_</c> (created on first use). Proposals are serialised by a row
/// lock on the study. Claims take a task with <c>FOR UPDATE SKIP LOCKED</c>, so concurrent claimers never wait for each
/// other or share a task. The owner's liveness is a subquery, not a join: a row locked after another claimer committed is
/// re-checked with its new owner (a joined row would be the stale one, and the task would be handed out twice). Heartbeats use the server's clock, so the workers' clocks need not agree.
/// </summary>
sealed class PostgresStudyStore : IStudyStore
{
    const int SchemaVersion = 1;

    const string Schema = """
        CREATE TABLE IF NOT EXISTS paretoprune_schema (version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS paretoprune_studies (id SERIAL PRIMARY KEY, name TEXT NOT NULL UNIQUE, created TIMESTAMPTZ NOT NULL DEFAULT now());
        CREATE TABLE IF NOT EXISTS paretoprune_values (study INTEGER NOT NULL REFERENCES paretoprune_studies ON DELETE CASCADE, key TEXT NOT NULL,
                                                       value TEXT NOT NULL, PRIMARY KEY (study, key));
        CREATE TABLE IF NOT EXISTS paretoprune_trials (study INTEGER NOT NULL REFERENCES paretoprune_studies ON DELETE CASCADE, number INTEGER NOT NULL,
                                                       state TEXT NOT NULL, sampler TEXT NOT NULL, kept TEXT NOT NULL, stages TEXT NOT NULL, error TEXT,
                                                       started TEXT NOT NULL, updated TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (study, number));
        CREATE TABLE IF NOT EXISTS paretoprune_tasks (study INTEGER NOT NULL REFERENCES paretoprune_studies ON DELETE CASCADE, trial INTEGER NOT NULL,
                                                      stage TEXT NOT NULL, worker TEXT, claimed TIMESTAMPTZ, attempts INTEGER NOT NULL DEFAULT 0,
                                                      done BOOLEAN NOT NULL DEFAULT false, completed_by TEXT, PRIMARY KEY (study, trial, stage));
        CREATE TABLE IF NOT EXISTS paretoprune_workers (study INTEGER NOT NULL REFERENCES paretoprune_studies ON DELETE CASCADE, id TEXT NOT NULL,
                                                        host TEXT NOT NULL, pid INTEGER NOT NULL, process_started TEXT NOT NULL, description TEXT NOT NULL,
                                                        started TIMESTAMPTZ NOT NULL DEFAULT now(), heartbeat TIMESTAMPTZ NOT NULL DEFAULT now(),
                                                        retired BOOLEAN NOT NULL DEFAULT false, PRIMARY KEY (study, id));
        CREATE TABLE IF NOT EXISTS paretoprune_artifacts (study INTEGER NOT NULL REFERENCES paretoprune_studies ON DELETE CASCADE, name TEXT NOT NULL,
                                                          data BYTEA NOT NULL, PRIMARY KEY (study, name));
        """;

    /// <summary>Serialises schema creation between processes that connect at once (CREATE TABLE IF NOT EXISTS alone races).</summary>
    const long SchemaLockKey = 0x7061726574_6F70;

    readonly NpgsqlDataSource source;
    readonly int study;

    PostgresStudyStore(NpgsqlDataSource source, string location, int study, DateTimeOffset created)
    {
        (this.source, Location, this.study, Created) = (source, location, study, created);
    }

    public string Location { get; }
    public bool IsShared => true;

    public bool IsWriter => true;

    public string? LiveWriter(TimeSpan heartbeatTimeout) =>
        Workers().Where(w => !w.Retired && DateTimeOffset.UtcNow - w.Heartbeat < heartbeatTimeout).Select(w => w.Description).ToList() is { Count: > 0 } live
            ? string.Join("; ", live) : null;
    public DateTimeOffset Created { get; }

    /// <summary>Opens the study <paramref name="name"/> on the server, creating it (and the tables) when <paramref name="create"/>.</summary>
    /// <returns>The store, and whether this call created the study.</returns>
    /// <exception cref="StudyNotFoundException">No such study and <paramref name="create"/> is false.</exception>
    public static (PostgresStudyStore Store, bool Created) Open(StudyStorage storage, string name, bool create)
    {
        var source = NpgsqlDataSource.Create(storage.ConnectionString);
        try
        {
            using var connection = source.OpenConnection();
            using (var transaction = connection.BeginTransaction())
            {
                Execute(connection, transaction, $"SELECT pg_advisory_xact_lock({SchemaLockKey})");
                Execute(connection, transaction, Schema);
                using var version = new NpgsqlCommand("SELECT version FROM paretoprune_schema", connection, transaction);
                switch (version.ExecuteScalar())
                {
                    case null: Execute(connection, transaction, $"INSERT INTO paretoprune_schema VALUES ({SchemaVersion})"); break;
                    case int v when v != SchemaVersion:
                        throw new InvalidDataException($"{storage.Location} has ParetoPrune tables of schema {v}; this version reads schema {SchemaVersion}");
                }
                transaction.Commit();
            }
            bool created = false;
            if (create)
            {
                using var insert = new NpgsqlCommand("INSERT INTO paretoprune_studies (name) VALUES (@n) ON CONFLICT (name) DO NOTHING RETURNING id", connection);
                insert.Parameters.AddWithValue("n", name);
                created = insert.ExecuteScalar() is not null;
            }
            using var find = new NpgsqlCommand("SELECT id, created FROM paretoprune_studies WHERE name = @n", connection);
            find.Parameters.AddWithValue("n", name);
            using var reader = find.ExecuteReader();
            if (!reader.Read()) throw new StudyNotFoundException($"there is no study '{name}' at {storage.Location}");
            var store = new PostgresStudyStore(source, $"{storage.Location} (study '{name}')", reader.GetInt32(0), reader.GetFieldValue<DateTimeOffset>(1));
            return (store, created);
        }
        catch (Exception e)
        {
            source.Dispose();
            if (e is NpgsqlException and not PostgresException)
                throw new IOException($"cannot reach the PostgreSQL server at {storage.Location}: {e.Message}", e);
            if (e is PostgresException p)
                throw new IOException($"the PostgreSQL server at {storage.Location} refused: {p.MessageText} ({p.SqlState})", e);
            throw;
        }
    }

    /// <summary>The names of the studies on the server, oldest first.</summary>
    public static IReadOnlyList<string> StudyNames(StudyStorage storage)
    {
        using var source = NpgsqlDataSource.Create(storage.ConnectionString);
        using var connection = source.OpenConnection();
        using var exists = new NpgsqlCommand("SELECT to_regclass('paretoprune_studies') IS NOT NULL", connection);
        if (!(bool)exists.ExecuteScalar()!) return [];
        using var list = new NpgsqlCommand("SELECT name FROM paretoprune_studies ORDER BY created, id", connection);
        using var reader = list.ExecuteReader();
        var names = new List<string>();
        while (reader.Read()) names.Add(reader.GetString(0));
        return names;
    }

    static void Execute(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, transaction);
        command.ExecuteNonQuery();
    }

    T Run<T>(string sql, Action<NpgsqlParameterCollection> parameters, Func<NpgsqlCommand, T> run)
    {
        using var connection = source.OpenConnection();
        using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("study", study);
        parameters(command.Parameters);
        return run(command);
    }

    T Transaction<T>(Func<Func<string, NpgsqlCommand>, T> body)
    {
        using var connection = source.OpenConnection();
        using var transaction = connection.BeginTransaction(IsolationLevel.ReadCommitted);
        var commands = new List<NpgsqlCommand>();
        try
        {
            var result = body(sql =>
            {
                var command = new NpgsqlCommand(sql, connection, transaction);
                command.Parameters.AddWithValue("study", study);
                commands.Add(command);
                return command;
            });
            transaction.Commit();
            return result;
        }
        finally
        {
            foreach (var command in commands) command.Dispose();
        }
    }

    public string? Get(string key) => Run("SELECT value FROM paretoprune_values WHERE study = @study AND key = @key",
        p => p.AddWithValue("key", key), c => c.ExecuteScalar() as string);

    public void Put(string key, string value) => Run("""
        INSERT INTO paretoprune_values (study, key, value) VALUES (@study, @key, @value) ON CONFLICT (study, key) DO UPDATE SET value = excluded.value
        """, p => { p.AddWithValue("key", key); p.AddWithValue("value", value); }, c => c.ExecuteNonQuery());

    public string PutIfAbsent(string key, string value) => Run("""
        WITH inserted AS (INSERT INTO paretoprune_values (study, key, value) VALUES (@study, @key, @value) ON CONFLICT (study, key) DO NOTHING RETURNING value)
        SELECT value FROM inserted UNION ALL SELECT value FROM paretoprune_values WHERE study = @study AND key = @key LIMIT 1
        """, p => { p.AddWithValue("key", key); p.AddWithValue("value", value); }, c => (string)c.ExecuteScalar()!);

    public Trial? Propose(string worker, Func<IReadOnlyList<Trial>, Proposal?> propose) => Transaction(command =>
    {
        using (var lockStudy = command("SELECT id FROM paretoprune_studies WHERE id = @study FOR UPDATE")) lockStudy.ExecuteNonQuery();
        var trials = ReadTrials(command("SELECT number, state, sampler, kept, stages, error, started FROM paretoprune_trials WHERE study = @study ORDER BY number"));
        if (propose(trials) is not { } proposal) return null;
        var trial = new Trial(trials.Count == 0 ? 0 : trials[^1].Number + 1, proposal.Sampler, proposal.Kept, TrialState.Running, [], null, DateTimeOffset.UtcNow);
        var insert = command(InsertTrial);
        AddTrial(insert.Parameters, trial);
        insert.ExecuteNonQuery();
        var task = command("INSERT INTO paretoprune_tasks (study, trial, stage, worker, claimed, attempts) VALUES (@study, @t, @s, @w, now(), 1)");
        task.Parameters.AddWithValue("t", trial.Number);
        task.Parameters.AddWithValue("s", nameof(SearchStage.Screening));
        task.Parameters.AddWithValue("w", worker);
        task.ExecuteNonQuery();
        return trial;
    });

    const string InsertTrial = """
        INSERT INTO paretoprune_trials (study, number, state, sampler, kept, stages, error, started) VALUES (@study, @n, @state, @sampler, @kept, @stages, @error, @started)
        """;

    const string UpsertTrial = InsertTrial + """

        ON CONFLICT (study, number) DO UPDATE SET state = excluded.state, sampler = excluded.sampler, kept = excluded.kept, stages = excluded.stages,
                                                  error = excluded.error, started = excluded.started, updated = now()
        """;

    public IReadOnlyList<Trial> Trials()
    {
        using var connection = source.OpenConnection();
        using var command = new NpgsqlCommand("SELECT number, state, sampler, kept, stages, error, started FROM paretoprune_trials WHERE study = @study ORDER BY number", connection);
        command.Parameters.AddWithValue("study", study);
        return ReadTrials(command);
    }

    public void Save(Trial trial) => Run(UpsertTrial, p => AddTrial(p, trial), c => c.ExecuteNonQuery());

    public void AddTasks(SearchStage stage, IEnumerable<int> trials)
    {
        int[] numbers = [.. trials];
        if (numbers.Length == 0) return;
        Run("INSERT INTO paretoprune_tasks (study, trial, stage) SELECT @study, t, @s FROM unnest(@trials) AS t ON CONFLICT DO NOTHING", p =>
        {
            p.AddWithValue("s", stage.ToString());
            p.AddWithValue("trials", numbers);
        }, c => c.ExecuteNonQuery());
    }

    public WorkItem? Claim(string worker, SearchStage stage, IReadOnlyCollection<int> among, TimeSpan heartbeatTimeout)
    {
        if (among.Count == 0) return null;
        return Run("""
            WITH candidate AS (
                SELECT t.trial FROM paretoprune_tasks t
                WHERE t.study = @study AND t.stage = @s AND NOT t.done AND t.trial = ANY(@among)
                  AND (t.worker IS NULL OR NOT EXISTS (
                      SELECT 1 FROM paretoprune_workers w
                      WHERE w.study = t.study AND w.id = t.worker AND NOT w.retired AND w.heartbeat >= now() - @timeout))
                ORDER BY t.trial LIMIT 1
                FOR UPDATE SKIP LOCKED)
            UPDATE paretoprune_tasks t SET worker = @w, claimed = now(), attempts = t.attempts + 1
            FROM candidate WHERE t.study = @study AND t.stage = @s AND t.trial = candidate.trial
            RETURNING t.trial, t.stage, t.worker, t.attempts, t.done, t.completed_by
            """, p =>
        {
            p.AddWithValue("s", stage.ToString());
            p.AddWithValue("among", among.ToArray());
            p.AddWithValue("timeout", heartbeatTimeout);
            p.AddWithValue("w", worker);
        }, c =>
        {
            using var reader = c.ExecuteReader();
            return reader.Read() ? ReadTask(reader) : null;
        });
    }

    public bool Complete(Trial trial, SearchStage stage, string worker) => Transaction(command =>
    {
        var mark = command("""
            INSERT INTO paretoprune_tasks (study, trial, stage, worker, claimed, attempts, done, completed_by) VALUES (@study, @t, @s, @w, now(), 1, true, @w)
            ON CONFLICT (study, trial, stage) DO UPDATE SET done = true, completed_by = excluded.completed_by WHERE NOT paretoprune_tasks.done
            """);
        mark.Parameters.AddWithValue("t", trial.Number);
        mark.Parameters.AddWithValue("s", stage.ToString());
        mark.Parameters.AddWithValue("w", worker);
        if (mark.ExecuteNonQuery() == 0) return false;
        var save = command(UpsertTrial);
        AddTrial(save.Parameters, trial);
        save.ExecuteNonQuery();
        return true;
    });

    public IReadOnlyList<WorkItem> Tasks() => Run(
        "SELECT trial, stage, worker, attempts, done, completed_by FROM paretoprune_tasks WHERE study = @study ORDER BY stage, trial", _ => { }, c =>
        {
            using var reader = c.ExecuteReader();
            var items = new List<WorkItem>();
            while (reader.Read()) items.Add(ReadTask(reader));
            return items;
        });

    public void Register(WorkerRecord worker) => Run("""
        INSERT INTO paretoprune_workers (study, id, host, pid, process_started, description) VALUES (@study, @id, @host, @pid, @ps, @d)
        """, p =>
    {
        p.AddWithValue("id", worker.Id);
        p.AddWithValue("host", worker.Host);
        p.AddWithValue("pid", worker.ProcessId);
        p.AddWithValue("ps", worker.ProcessStarted.ToString("O"));
        p.AddWithValue("d", worker.Description);
    }, c => c.ExecuteNonQuery());

    public void Heartbeat(string worker) => SetWorker(worker, "heartbeat = now()");

    public void Retire(string worker) => SetWorker(worker, "retired = true");

    void SetWorker(string worker, string assignment) =>
        Run($"UPDATE paretoprune_workers SET {assignment} WHERE study = @study AND id = @id", p => p.AddWithValue("id", worker), c => c.ExecuteNonQuery());

    public IReadOnlyList<WorkerRecord> Workers() => Run(
        "SELECT id, host, pid, process_started, description, started, heartbeat, retired FROM paretoprune_workers WHERE study = @study ORDER BY started, id",
        _ => { }, c =>
        {
            using var reader = c.ExecuteReader();
            var workers = new List<WorkerRecord>();
            while (reader.Read())
                workers.Add(new WorkerRecord(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), DateTimeOffset.Parse(reader.GetString(3), CultureInfo.InvariantCulture),
                    reader.GetString(4), reader.GetFieldValue<DateTimeOffset>(5), reader.GetFieldValue<DateTimeOffset>(6), reader.GetBoolean(7)));
            return workers;
        });

    public void PutArtifact(string name, byte[] data) => Run("""
        INSERT INTO paretoprune_artifacts (study, name, data) VALUES (@study, @n, @d) ON CONFLICT (study, name) DO UPDATE SET data = excluded.data
        """, p => { p.AddWithValue("n", name); p.Add(new NpgsqlParameter("d", NpgsqlDbType.Bytea) { Value = data }); }, c => c.ExecuteNonQuery());

    public byte[]? GetArtifact(string name) => Run("SELECT data FROM paretoprune_artifacts WHERE study = @study AND name = @n",
        p => p.AddWithValue("n", name), c => c.ExecuteScalar() as byte[]);

    /// <summary>Removes the study and everything stored with it (one that was rejected before its first trial).</summary>
    public void Delete()
    {
        Run("DELETE FROM paretoprune_studies WHERE id = @study", _ => { }, c => c.ExecuteNonQuery());
        Dispose();
    }

    public void Dispose() => source.Dispose();

    static void AddTrial(NpgsqlParameterCollection p, Trial trial)
    {
        p.AddWithValue("n", trial.Number);
        p.AddWithValue("state", trial.State.ToString());
        p.AddWithValue("sampler", trial.Sampler);
        p.AddWithValue("kept", System.Text.Json.JsonSerializer.Serialize(trial.Kept, StudyStore.JsonOptions));
        p.AddWithValue("stages", System.Text.Json.JsonSerializer.Serialize(trial.Stages, StudyStore.JsonOptions));
        p.Add(new NpgsqlParameter("error", NpgsqlDbType.Text) { Value = (object?)trial.Error ?? DBNull.Value });
        p.AddWithValue("started", trial.Started.ToString("O"));
    }

    List<Trial> ReadTrials(NpgsqlCommand command)
    {
        using var reader = command.ExecuteReader();
        var trials = new List<Trial>();
        while (reader.Read())
            trials.Add(StudyStore.ReadTrial(reader.GetInt32(0), reader.GetString(1), reader.GetString(2), reader.GetString(3), reader.GetString(4),
                                            reader.IsDBNull(5) ? null : reader.GetString(5), reader.GetString(6), Location));
        return trials;
    }

    static WorkItem ReadTask(NpgsqlDataReader reader) => new(reader.GetInt32(0), Enum.Parse<SearchStage>(reader.GetString(1)),
        reader.IsDBNull(2) ? null : reader.GetString(2), reader.GetInt32(3), reader.GetBoolean(4), reader.IsDBNull(5) ? null : reader.GetString(5));
}

/// <summary>No study of that name where one was to be joined; the message names the place.</summary>
public sealed class StudyNotFoundException(string message) : IOException(message);
