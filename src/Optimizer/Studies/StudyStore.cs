using System.Globalization;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;

namespace ParetoPrune.Optimizer.Studies;

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
    /// <summary>Why the validation images may have been seen by the model in training (the search data's caveat); null when known unseen.</summary>
    public string? ValidationCaveat { get; init; }

    /// <summary>
    /// Trials screened at once by all the study's workers together: trial n is proposed from the results of trials
    /// 0 … n − P (the search option <c>Parallelism</c>). Fixed at creation; a joining or resuming process uses it.
    /// </summary>
    public int Parallelism { get; init; } = 1;

    /// <summary>
    /// Training threads of each screening trial, and of each promotion or final fine-tuning, fixed at creation: on some CPUs
    /// libtorch's results change with the thread count, so a trial's count must not depend on which worker runs it (null in
    /// studies from before: the running process's count).
    /// </summary>
    public int? ScreeningThreads { get; init; }

    /// <inheritdoc cref="ScreeningThreads"/>
    public int? FineTuneThreads { get; init; }

    /// <summary>
    /// libtorch's convolution kernels (<see cref="Training.KernelModes.Name"/>) every worker trains with, chosen where the
    /// study was created: kernels change the last digits of training, and each machine's own choice depends on timing
    /// (<see cref="Training.KernelSelection"/>). Null in studies from before: each process's own choice.
    /// </summary>
    public string? Kernels { get; init; }

    /// <summary>With channels-last <see cref="Kernels"/>: the channel block every layer must be a multiple of (<see cref="Training.KernelDecision.ChannelsLastBlock"/>).</summary>
    public int KernelsChannelsLastBlock { get; init; }

    /// <summary>How the final front's models are also quantized to INT8 (<c>search --quantize</c>); null when they are not.</summary>
    public Quantization.QuantizationOptions? Quantize { get; init; }

    /// <summary>Whether uniform pruning at the cost bound is carried through every stage (the search option <c>UniformBaseline</c>);
    /// false in studies from before it existed. The study's setting: a resumed or joined study keeps it.</summary>
    public bool UniformBaseline { get; init; }

    /// <summary>The share of the Bayesian optimiser's proposals placed on the budget surface (the search option <c>BoundFocus</c>);
    /// 0 in studies from before it existed. The study's setting: a resumed or joined study keeps it.</summary>
    public double BoundFocus { get; init; }

    /// <summary>Whether the search probes each group's sensitivity first (the search option <c>SensitivityPrior</c>);
    /// false in studies from before it existed. The study's setting: a resumed or joined study keeps it.</summary>
    public bool SensitivityPrior { get; init; }

    /// <summary>Differences that forbid resuming (the trial budget may grow, the parallelism is the study's, everything else must match).</summary>
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
        Compare("quantization", Quantize, other.Quantize);
        return problems;
    }
}

/// <summary>
/// A study, wherever it is kept (<see cref="IStudyStore"/>: an SQLite file, the default, or a PostgreSQL server shared by
/// workers on many machines): its definition, the baseline, and every trial, each written as soon as the trial (or one of
/// its stages) ends, in one transaction. A killed search loses at most the trials in flight, and a resumed one rebuilds
/// its sampler from the stored trials. Safe to share between threads. Trial numbers come from the store
/// (<see cref="IStudyStore.Propose"/>), not from a process.
/// </summary>
public sealed class StudyStore : IDisposable
{
    /// <summary>Relaxed escaping: settings such as "macs<=0.5×baseline" stay readable in the file and in messages.</summary>
    internal static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    StudyStore(IStudyStore backend) => Backend = backend;

    /// <summary>The backend, for the search's workers (claims, heartbeats) and for checks.</summary>
    public IStudyStore Backend { get; }

    /// <summary>Where the study is, in words (a file, or a server and the study's name).</summary>
    public string Location => Backend.Location;

    /// <summary>The SQLite file; null for a study on a server.</summary>
    public string? FilePath => Backend.IsShared ? null : Backend.Location;

    /// <summary>Whether this instance may write: a server study always, an SQLite one while holding the file's writer lock
    /// (<see cref="Create"/>, <see cref="OpenForWriting"/>).</summary>
    public bool IsWriter => Backend.IsWriter;

    /// <summary>Creates a new study file (the directory too) and holds its writer lock. Refuses to overwrite an existing study.</summary>
    /// <exception cref="StoreInUseException">Another process is creating or writing a study there.</exception>
    public static StudyStore Create(string path, StudyDefinition definition)
    {
        var store = new StudyStore(SqliteStudyStore.Create(path));
        store.Backend.Put("definition", JsonSerializer.Serialize(definition, JsonOptions));
        return store;
    }

    /// <summary>Opens an existing study file to read it (a report, a listing), beside a search that may be writing it.</summary>
    /// <exception cref="FileNotFoundException">No study there.</exception>
    /// <exception cref="InvalidDataException">The file is not a study store (or a newer schema); the message says which.</exception>
    public static StudyStore Open(string path) => Open(path, write: false);

    /// <summary>Opens an existing study file to continue it, holding its writer lock until disposed.</summary>
    /// <exception cref="StoreInUseException">Another process is writing it; the message names that process.</exception>
    public static StudyStore OpenForWriting(string path) => Open(path, write: true);

    /// <summary>
    /// The study <paramref name="name"/> on a server: created with <paramref name="definition"/> if it is new, joined if it
    /// exists and asks the same question (<see cref="StudyDefinition.Differences"/>; the trial budget may differ).
    /// </summary>
    /// <returns>The store, and whether this call created the study.</returns>
    /// <exception cref="ArgumentException">The existing study was started with other settings; the message lists them.</exception>
    /// <param name="mayCreate">False for a worker, which only joins.</param>
    /// <exception cref="StudyNotFoundException">No such study, and <paramref name="mayCreate"/> is false.</exception>
    public static (StudyStore Store, bool Created) CreateOrJoin(StudyStorage storage, string name, StudyDefinition definition, bool mayCreate = true)
    {
        var (backend, created) = PostgresStudyStore.Open(storage, name, create: mayCreate);
        var store = new StudyStore(backend);
        try
        {
            string stored = backend.PutIfAbsent("definition", JsonSerializer.Serialize(definition, JsonOptions));
            var problems = JsonSerializer.Deserialize<StudyDefinition>(stored, JsonOptions)!.Differences(definition);
            if (problems.Count > 0)
                throw new ArgumentException($"cannot join {backend.Location}: it was started with other settings ({string.Join("; ", problems)})");
            return (store, created);
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>An existing study on a server (a worker joining it, a report).</summary>
    /// <exception cref="StudyNotFoundException">No study of that name there.</exception>
    public static StudyStore Join(StudyStorage storage, string name)
    {
        var store = new StudyStore(PostgresStudyStore.Open(storage, name, create: false).Store);
        try
        {
            _ = store.Definition;
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>The names of the studies on a server, oldest first (none when it holds no study yet).</summary>
    public static IReadOnlyList<string> Names(StudyStorage storage) => PostgresStudyStore.StudyNames(storage);

    /// <summary>Whether a process is writing the study file at <paramref name="path"/> now (a killed one is not).</summary>
    public static bool IsBeingWritten(string path) => WriterLock.IsHeld(System.IO.Path.GetFullPath(path));

    static StudyStore Open(string path, bool write)
    {
        var store = new StudyStore(SqliteStudyStore.Open(path, write));
        try
        {
            _ = store.Definition;
            _ = store.Backend.Trials(); // a damaged file fails here, not mid-report
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

    public StudyDefinition Definition => JsonSerializer.Deserialize<StudyDefinition>(Backend.Get("definition")
        ?? throw new InvalidDataException($"{Location} has no study definition"), JsonOptions)!;

    public DateTimeOffset Created => Backend.Created;

    /// <summary>Who works on the study now, in words (<see cref="IStudyStore.LiveWriter"/>: the process holding the file's
    /// writer lock, described as <see cref="WriterLock.Describe"/> recorded it, or a server study's live workers); null when
    /// none does.</summary>
    public string? Writer => Backend.LiveWriter(new WorkerOptions().HeartbeatTimeout);

    /// <summary>The workers that are not retired and sent a heartbeat within <paramref name="timeout"/> (default: the
    /// search's, <see cref="WorkerOptions.HeartbeatTimeout"/>).</summary>
    public IReadOnlyList<WorkerRecord> LiveWorkers(TimeSpan? timeout = null)
    {
        var limit = timeout ?? new WorkerOptions().HeartbeatTimeout;
        return Backend.Workers().Where(w => !w.Retired && DateTimeOffset.UtcNow - w.Heartbeat < limit).ToList();
    }

    /// <summary>The trial budget grows when a study is resumed with more trials.</summary>
    public void UpdateTrialBudget(int trials) => Backend.Put("definition", JsonSerializer.Serialize(Definition with { Trials = trials }, JsonOptions));

    /// <summary>The unpruned model's values (the reference of relative constraints and of the hypervolume).</summary>
    public StageResult? Baseline
    {
        get => Backend.Get("baseline") is { } json ? JsonSerializer.Deserialize<StageResult>(json, JsonOptions) : null;
        set => Backend.Put("baseline", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>Stores the baseline unless a worker stored one first; returns the stored one (every worker then uses the same).</summary>
    public StageResult SetBaselineOnce(StageResult baseline) =>
        JsonSerializer.Deserialize<StageResult>(Backend.PutIfAbsent("baseline", JsonSerializer.Serialize(baseline, JsonOptions)), JsonOptions)!;

    /// <summary>The search dimensions (names, sizes, groups), so reports can label configurations without the model.</summary>
    public IReadOnlyList<SearchDimension>? Dimensions
    {
        get => Backend.Get("dimensions") is { } json ? JsonSerializer.Deserialize<List<SearchDimension>>(json, JsonOptions) : null;
        set => Backend.PutIfAbsent("dimensions", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>The settings the study was started with, as its front end recorded them (option → values; see
    /// the search option <c>Invocation</c>); null when none were recorded. The first recording stays.</summary>
    public IReadOnlyDictionary<string, string[]>? Invocation
    {
        get => Backend.Get("invocation") is { } json ? JsonSerializer.Deserialize<Dictionary<string, string[]>>(json, JsonOptions) : null;
        set => Backend.PutIfAbsent("invocation", JsonSerializer.Serialize(value ?? throw new ArgumentNullException(nameof(value)), JsonOptions));
    }

    /// <summary>As the search last wrote it: running, stopped or finished (see <see cref="LiveStatus"/>).</summary>
    public StudyStatus Status
    {
        get => StudyStatuses.Parse(Backend.Get("status"));
        set => Backend.Put("status", value.Name());
    }

    /// <summary><see cref="Status"/>, with a running study that no process works on any more told as killed.</summary>
    public StudyStatus LiveStatus => Status != StudyStatus.Running ? Status : Writer is not null ? StudyStatus.Running : StudyStatus.Killed;

    /// <summary>Stores a new running trial under the next free number, allocated by the store in the same transaction.</summary>
    public Trial NewTrial(string sampler, int[] kept) => Backend.Propose(WorkerIdentity.Anonymous, _ => new Proposal(sampler, kept))!;

    public void Save(Trial trial) => Backend.Save(trial);

    /// <summary>All trials, by number.</summary>
    public IReadOnlyList<Trial> Trials() => Backend.Trials();

    /// <summary>A trial row as a backend read it; a row that cannot be read names its trial.</summary>
    internal static Trial ReadTrial(int number, string state, string sampler, string kept, string stages, string? error, string started, string location)
    {
        try
        {
            return new Trial(number, sampler, JsonSerializer.Deserialize<int[]>(kept, JsonOptions)!, Enum.Parse<TrialState>(state),
                JsonSerializer.Deserialize<List<StageResult>>(stages, JsonOptions)!, error, DateTimeOffset.Parse(started, CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is JsonException or FormatException or ArgumentException)
        {
            throw new InvalidDataException($"{location}: trial {number} cannot be read: {e.Message}", e);
        }
    }

    public void Dispose() => Backend.Dispose();
}
