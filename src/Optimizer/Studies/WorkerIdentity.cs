using System.Diagnostics;
using System.Globalization;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>How the workers of a study keep each other informed.</summary>
public sealed record WorkerOptions
{
    /// <summary>How often a worker process tells the store it is alive.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>A worker silent for longer is taken for dead and its tasks are re-run by others. A dead worker on the same
    /// machine is recognised at once by its process id. Several intervals long, so a busy machine is not taken for dead.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a worker with nothing to claim waits before looking again (others hold the remaining tasks).</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    internal void Validate()
    {
        if (HeartbeatInterval <= TimeSpan.Zero || PollInterval <= TimeSpan.Zero) throw new ArgumentException("heartbeat and poll intervals must be positive");
        if (HeartbeatTimeout < 2 * HeartbeatInterval)
            throw new ArgumentException($"the heartbeat timeout ({HeartbeatTimeout.TotalSeconds:0.#} s) must be at least two intervals ({HeartbeatInterval.TotalSeconds:0.#} s each)");
    }
}

/// <summary>This process as a worker of a study, and whether another worker's process still runs.</summary>
static class WorkerIdentity
{
    /// <summary>The owner of trials stored directly (<see cref="StudyStore.NewTrial"/>), outside any search.</summary>
    public const string Anonymous = "(direct)";

    static readonly DateTimeOffset ProcessStarted = Truncate(Process.GetCurrentProcess().StartTime.ToUniversalTime());

    /// <summary>A new worker record for this process (unique even when one process runs several searches).</summary>
    public static WorkerRecord ForThisProcess()
    {
        string host = Environment.MachineName;
        int pid = Environment.ProcessId;
        var now = DateTimeOffset.UtcNow;
        return new WorkerRecord($"{host}:{pid}:{Guid.NewGuid().ToString("N")[..8]}", host, pid, ProcessStarted,
            $"process {pid} on {host}, since {now.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC", now, now, Retired: false);
    }

    /// <summary>
    /// Whether <paramref name="worker"/> ran on this machine in a process that has ended: its id is gone, belongs to a
    /// process started at another time (reused), or is a zombie. Workers on other machines are judged by heartbeat only.
    /// </summary>
    public static bool IsDeadHere(WorkerRecord worker)
    {
        if (worker.Retired || worker.Host != Environment.MachineName) return false;
        if (worker.ProcessId == Environment.ProcessId) return worker.ProcessStarted != ProcessStarted;
        try
        {
            using var process = Process.GetProcessById(worker.ProcessId);
            if (OperatingSystem.IsLinux() && File.Exists($"/proc/{worker.ProcessId}/stat"))
            {
                string stat = File.ReadAllText($"/proc/{worker.ProcessId}/stat");
                int end = stat.LastIndexOf(')');
                if (end > 0 && end + 2 < stat.Length && stat[end + 2] is 'Z' or 'X') return true;
            }
            return Math.Abs((Truncate(process.StartTime.ToUniversalTime()) - worker.ProcessStarted).TotalSeconds) > 2;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException)
        {
            return true; // no such process (or it exited while being looked at)
        }
    }

    static DateTimeOffset Truncate(DateTime time) => new(time.Ticks - time.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);
}
