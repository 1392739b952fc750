using ParetoPrune.Optimizer.Sampling;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// Where a study lives, as a backend sees it (SQLite: <see cref="SqliteStudyStore"/>; PostgreSQL:
/// <see cref="PostgresStudyStore"/>). <see cref="StudyStore"/> is the typed view the search uses. Any number of workers
/// (threads, processes, machines, as the backend allows) share one study through it. The contract, which
/// <c>StudyStoreContractTests</c> checks against every backend:
/// <list type="bullet">
/// <item><b>Trial numbers come from the store.</b> <see cref="Propose"/> runs the proposal and stores its trial in one
/// transaction, serialised with every other proposal of the study: numbers are 0, 1, 2, … without gaps or repeats, and
/// each proposer sees every trial proposed before it.</item>
/// <item><b>A task is owned by one live worker.</b> A task is one stage of one trial. A proposed trial's screening is
/// claimed by its proposer; <see cref="Claim"/> hands a task that no live worker owns to exactly one caller.</item>
/// <item><b>Liveness is a heartbeat.</b> A worker is live while it is not retired and its last <see cref="Heartbeat"/> is
/// younger than the timeout its claimers give. The tasks of a worker that stopped heart-beating are claimed again and
/// re-run.</item>
/// <item><b>A task completes once.</b> <see cref="Complete"/> stores the trial and marks its task done in one
/// transaction. A later completion of the same task (a worker thought dead that comes back) changes nothing.</item>
/// <item><b>A crash loses at most the tasks in flight.</b> Every change is one transaction. A killed worker leaves its
/// claims, which are claimed again once it is known dead.</item>
/// </list>
/// </summary>
public interface IStudyStore : IDisposable
{
    /// <summary>Where the study is, for messages: a file path, or a server URL without its password and the study's name.</summary>
    string Location { get; }

    /// <summary>Whether workers on other machines may share it. If so, exported models go into it as artifacts, because
    /// they are written on whichever machine ran the final stage.</summary>
    bool IsShared { get; }

    DateTimeOffset Created { get; }

    /// <summary>Whether this instance may write the study: a server study always; an SQLite file while this instance holds
    /// its writer lock (a reader beside a running search does not).</summary>
    bool IsWriter { get; }

    /// <summary>
    /// Who works on the study now, in words, or null when no process does (a stopped or killed search). An SQLite file:
    /// the process holding its writer lock. A server study: its workers that are not retired and sent a heartbeat within
    /// <paramref name="heartbeatTimeout"/>.
    /// </summary>
    string? LiveWriter(TimeSpan heartbeatTimeout);

    /// <summary>Removes the study and everything stored with it (a study rejected before its first trial). Only a writer
    /// may; the store is closed afterwards.</summary>
    void Delete();

    string? Get(string key);
    void Put(string key, string value);

    /// <summary>Stores <paramref name="value"/> unless the key has one already; returns the stored value (the first writer's).</summary>
    string PutIfAbsent(string key, string value);

    /// <summary>
    /// Under the study's proposal lock: gives <paramref name="propose"/> every stored trial. If it proposes, the trial is stored
    /// as the next number, running and claimed by <paramref name="worker"/>, and is returned. Returns null if it did not
    /// propose (it is not this trial's turn yet, or the budget or the space is spent).
    /// </summary>
    Trial? Propose(string worker, Func<IReadOnlyList<Trial>, Proposal?> propose);

    /// <summary>All trials, by number.</summary>
    IReadOnlyList<Trial> Trials();

    /// <summary>Stores a trial as it is (no task bookkeeping): imports, repairs and tests.</summary>
    void Save(Trial trial);

    /// <summary>Adds the tasks of <paramref name="stage"/> for these trials, unowned, where missing (idempotent: every worker
    /// computes the same selection and adds it).</summary>
    void AddTasks(SearchStage stage, IEnumerable<int> trials);

    /// <summary>
    /// Claims for <paramref name="worker"/> the lowest-numbered task of <paramref name="stage"/> among
    /// <paramref name="among"/>. The task must not be done, and its owner must be none, retired, or silent for longer
    /// than <paramref name="heartbeatTimeout"/>. Exactly one of several concurrent claimers gets a given task; null when
    /// none is free.
    /// </summary>
    WorkItem? Claim(string worker, SearchStage stage, IReadOnlyCollection<int> among, TimeSpan heartbeatTimeout);

    /// <summary>Stores <paramref name="trial"/> and marks its <paramref name="stage"/> task done by <paramref name="worker"/>,
    /// in one transaction. Returns false, storing nothing, if that task was done already.</summary>
    bool Complete(Trial trial, SearchStage stage, string worker);

    /// <summary>Every task, for progress and for checks.</summary>
    IReadOnlyList<WorkItem> Tasks();

    /// <summary>Records a worker as live from now (its first heartbeat).</summary>
    void Register(WorkerRecord worker);

    void Heartbeat(string worker);

    /// <summary>A worker that stopped, or was found dead: its tasks may be claimed at once.</summary>
    void Retire(string worker);

    IReadOnlyList<WorkerRecord> Workers();

    /// <summary>A file that belongs with the study (an exported model), for workers on other machines.</summary>
    void PutArtifact(string name, byte[] data);

    byte[]? GetArtifact(string name);
}

/// <summary>What a sampler proposed for the next trial.</summary>
public sealed record Proposal(string Sampler, int[] Kept);

/// <summary>One stage of one trial, as the store tracks it.</summary>
/// <param name="Worker">Its current (or last) owner; null if never claimed.</param>
/// <param name="Attempts">How often it was claimed: 1, or more when a worker died with it.</param>
/// <param name="CompletedBy">The worker whose result was stored.</param>
public sealed record WorkItem(int Trial, SearchStage Stage, string? Worker, int Attempts, bool Done, string? CompletedBy);

/// <summary>A process working on a study.</summary>
/// <param name="Id">Unique per process and study: host, process id and a random suffix.</param>
/// <param name="ProcessStarted">When its process started (rounded to seconds), so that a reused process id is not taken for it.</param>
/// <param name="Description">In words, for listings: "process 1234 on pi-host, since …".</param>
/// <param name="Heartbeat">Its last sign of life, by the store's clock.</param>
public sealed record WorkerRecord(string Id, string Host, int ProcessId, DateTimeOffset ProcessStarted, string Description,
                                  DateTimeOffset Started, DateTimeOffset Heartbeat, bool Retired);
