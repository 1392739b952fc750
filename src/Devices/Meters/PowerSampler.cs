using System.Diagnostics;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Samples an <see cref="IPowerMeter"/> on a dedicated thread every interval, stamping each reading with the
/// monotonic <see cref="Stopwatch.GetTimestamp"/>. A dedicated thread, not a timer or the thread pool, so that a
/// busy pool during inference does not delay or drop samples.
/// </summary>
/// <remarks>
/// It runs for as long as an agent on a Pi runs (days), so nothing it holds grows without bound: it keeps only what
/// a window needs (<see cref="Retain"/>), never more than <see cref="Capacity"/> samples, and a meter that fails for a
/// while (an unplugged USB meter, an I2C bus reset) is retried until it answers again. Windows that span such an
/// outage are refused (<see cref="OutageWithin"/>) rather than interpolated across it.
/// </remarks>
public sealed class PowerSampler : IDisposable
{
    /// <summary>Failed reads in a row that count as an outage; fewer are skipped (an I2C glitch, one lost frame).</summary>
    public const int MaxConsecutiveFailures = 5;

    /// <summary>Default <see cref="Capacity"/>: about 1.6 MB, 28 minutes at the INA2xx's fastest 1 ms update.</summary>
    public const int DefaultCapacity = 100_000;

    private const int OutagesKept = 16;

    private readonly IPowerMeter _meter;
    private readonly object _lock = new(); // not Lock: Monitor.Wait/PulseAll signal new data
    private readonly List<long> _timestamps = [];
    private readonly List<double> _watts = [];
    private readonly List<(long From, long To, string Why)> _outages = [];
    private readonly ManualResetEventSlim _stopRequested = new(false);
    private Thread? _thread;
    private Exception? _failure;
    private long _failingSince;
    private long _retainFrom = long.MinValue;

    /// <param name="interval">Time between samples; the meter's <see cref="IPowerMeter.SampleInterval"/> if null.</param>
    /// <param name="capacity">The most samples kept; the oldest go first.</param>
    /// <param name="retryInterval">Time between reads while the meter is failing; the larger of the interval and 1 s if null.</param>
    public PowerSampler(IPowerMeter meter, TimeSpan? interval = null, int capacity = DefaultCapacity, TimeSpan? retryInterval = null)
    {
        _meter = meter;
        Interval = interval ?? meter.SampleInterval;
        if (Interval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(interval), Interval, $"{meter.Name}: the sampling interval must be positive.");
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 2);
        Capacity = capacity;
        RetryInterval = retryInterval ?? (Interval > TimeSpan.FromSeconds(1) ? Interval : TimeSpan.FromSeconds(1));
    }

    public TimeSpan Interval { get; }

    public int Capacity { get; }

    public TimeSpan RetryInterval { get; }

    /// <summary>Samples held now (bounded by <see cref="Capacity"/>).</summary>
    public int Count
    {
        get { lock (_lock) return _timestamps.Count; }
    }

    /// <summary>Outages the meter recovered from since sampling started.</summary>
    public int Recoveries { get; private set; }

    public bool IsRunning
    {
        get { lock (_lock) return _thread is not null; }
    }

    /// <summary>Why the meter is failing now (<see cref="MaxConsecutiveFailures"/> failed reads in a row, still retried), or null.</summary>
    public Exception? Failure
    {
        get { lock (_lock) return _failure; }
    }

    public void Start()
    {
        lock (_lock)
        {
            if (_thread is not null)
                throw new InvalidOperationException($"The sampler for {_meter.Name} is already running.");
            _failure = null;
            _outages.Clear();
            _stopRequested.Reset();
            _thread = new Thread(Run) { IsBackground = true, Name = "PowerSampler", Priority = ThreadPriority.AboveNormal };
            _thread.Start();
        }
    }

    /// <summary>Stops sampling and waits for a read in progress to finish; the samples are kept.</summary>
    public void Stop()
    {
        Thread? thread;
        lock (_lock)
            thread = _thread;
        if (thread is null)
            return;
        _stopRequested.Set();
        thread.Join();
        lock (_lock)
        {
            _thread = null;
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>
    /// The samples so far; from <paramref name="fromTimestamp"/> on (plus the last sample before it, which a window
    /// starting there needs for interpolation) when given.
    /// </summary>
    public PowerTrace Snapshot(long fromTimestamp = long.MinValue)
    {
        lock (_lock)
        {
            var first = Math.Max(0, IndexAfter(fromTimestamp) - 1);
            return new PowerTrace(_timestamps[first..], _watts[first..]);
        }
    }

    /// <summary>Waits until a sample later than <paramref name="timestamp"/> exists; false on timeout.</summary>
    /// <exception cref="IOException">Sampling stopped because the meter kept failing.</exception>
    /// <exception cref="InvalidOperationException">The sampler is not running, so no such sample will come.</exception>
    public bool WaitForSampleAfter(long timestamp, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        lock (_lock)
        {
            while (true)
            {
                if (_timestamps.Count > 0 && _timestamps[^1] > timestamp)
                    return true;
                if (_failure is not null)
                    throw new IOException($"{_meter.Name}: the meter is not answering ({MaxConsecutiveFailures} or more failed reads in a row; " +
                                          $"retried every {RetryInterval.TotalSeconds:0.#} s): {_failure.Message}", _failure);
                if (_thread is null)
                    throw new InvalidOperationException($"The sampler for {_meter.Name} is not running.");
                var left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                    return false;
                Monitor.Wait(_lock, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            }
        }
    }

    /// <summary>
    /// Keeps from now on only what a window starting at <paramref name="timestamp"/> needs: the samples from it on and the
    /// last one before it. <see cref="long.MaxValue"/> while no window is open keeps only the latest sample.
    /// </summary>
    internal void Retain(long timestamp)
    {
        lock (_lock)
        {
            _retainFrom = timestamp;
            Trim();
        }
    }

    /// <summary>An outage of the meter that overlaps the window, in words; null when it was read throughout.</summary>
    public string? OutageWithin(long fromTimestamp, long toTimestamp)
    {
        lock (_lock)
        {
            var outages = _failure is null ? _outages : [.. _outages, (_failingSince, Stopwatch.GetTimestamp(), _failure.Message)]; // one still going on
            foreach (var (from, to, why) in outages)
                if (from <= toTimestamp && to >= fromTimestamp)
                    return $"the meter did not answer for {(double)(to - from) / Stopwatch.Frequency:0.0} s ({why})";
            return null;
        }
    }

    public void Dispose()
    {
        Stop();
        _stopRequested.Dispose();
    }

    private void Run()
    {
        var period = (long)(Interval.TotalSeconds * Stopwatch.Frequency);
        var next = Stopwatch.GetTimestamp();
        var failures = 0;
        long firstFailure = 0;
        while (!_stopRequested.IsSet)
        {
            var before = Stopwatch.GetTimestamp();
            try
            {
                var watts = _meter.ReadWatts();
                // The reading belongs somewhere inside the read call (a USB meter takes ~0.2 s to answer): the midpoint
                // keeps the timing error under half the call's duration.
                var stamp = before + (Stopwatch.GetTimestamp() - before) / 2;
                if (!double.IsFinite(watts))
                    throw new InvalidDataException($"{_meter.Name} gave a non-finite power reading ({watts}).");
                failures = 0;
                lock (_lock)
                {
                    if (_failure is not null)
                    {
                        // Recovered: remember the outage so no window is integrated across it.
                        _outages.Add((_failingSince, stamp, _failure.Message));
                        if (_outages.Count > OutagesKept) _outages.RemoveAt(0);
                        _failure = null;
                        Recoveries++;
                    }
                    if (_timestamps.Count == 0 || stamp > _timestamps[^1])
                    {
                        _timestamps.Add(stamp);
                        _watts.Add(watts);
                        Trim();
                    }
                    Monitor.PulseAll(_lock);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (failures++ == 0) firstFailure = before;
                if (failures >= MaxConsecutiveFailures)
                {
                    lock (_lock)
                    {
                        if (_failure is null) _failingSince = firstFailure;
                        _failure = e;
                        Monitor.PulseAll(_lock);
                    }
                    // Keep trying, more slowly: the meter may come back (a replugged USB meter, a reset I2C bus).
                    _stopRequested.Wait(RetryInterval);
                    next = Stopwatch.GetTimestamp();
                    continue;
                }
            }

            // A fixed schedule, not sleep-after-read, so read time does not stretch the interval; if a read overran
            // the schedule, start again from now rather than firing a burst of catch-up reads.
            next += period;
            var now = Stopwatch.GetTimestamp();
            if (next <= now)
                next = now;
            else
                _stopRequested.Wait(TimeSpan.FromSeconds((double)(next - now) / Stopwatch.Frequency));
        }
    }

    /// <summary>Drops what no window needs (before <see cref="Retain"/>'s mark, all but the last) and anything over capacity. Under the lock.</summary>
    private void Trim()
    {
        var drop = Math.Max(0, IndexAfter(_retainFrom) - 1);
        if (_timestamps.Count - drop > Capacity)
            drop = _timestamps.Count - Capacity + Capacity / 4; // in batches: RemoveRange moves the rest
        if (drop == 0)
            return;
        _timestamps.RemoveRange(0, drop);
        _watts.RemoveRange(0, drop);
    }

    private int IndexAfter(long timestamp)
    {
        var k = _timestamps.BinarySearch(timestamp);
        return k >= 0 ? k + 1 : ~k;
    }
}
