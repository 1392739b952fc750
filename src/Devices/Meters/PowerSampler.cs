using System.Diagnostics;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Samples an <see cref="IPowerMeter"/> on a dedicated thread every interval, stamping each reading with the
/// monotonic <see cref="Stopwatch.GetTimestamp"/>. A dedicated thread, not a timer or the thread pool, so that a
/// busy pool during inference does not delay or drop samples.
/// </summary>
public sealed class PowerSampler : IDisposable
{
    /// <summary>Failed reads in a row that stop sampling; fewer are skipped (an I2C glitch, one lost frame).</summary>
    public const int MaxConsecutiveFailures = 5;

    private readonly IPowerMeter _meter;
    private readonly object _lock = new(); // not Lock: Monitor.Wait/PulseAll signal new data
    private readonly List<long> _timestamps = [];
    private readonly List<double> _watts = [];
    private readonly ManualResetEventSlim _stopRequested = new(false);
    private Thread? _thread;
    private Exception? _failure;

    /// <param name="interval">Time between samples; the meter's <see cref="IPowerMeter.SampleInterval"/> if null.</param>
    public PowerSampler(IPowerMeter meter, TimeSpan? interval = null)
    {
        _meter = meter;
        Interval = interval ?? meter.SampleInterval;
        if (Interval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(interval), Interval, $"{meter.Name}: the sampling interval must be positive.");
    }

    public TimeSpan Interval { get; }

    public bool IsRunning
    {
        get { lock (_lock) return _thread is not null; }
    }

    /// <summary>Why sampling stopped by itself (<see cref="MaxConsecutiveFailures"/> failed reads), or null.</summary>
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
                    throw new IOException($"{_meter.Name}: sampling stopped after {MaxConsecutiveFailures} failed reads in a row: {_failure.Message}", _failure);
                if (_thread is null)
                    throw new InvalidOperationException($"The sampler for {_meter.Name} is not running.");
                var left = deadline - Stopwatch.GetTimestamp();
                if (left <= 0)
                    return false;
                Monitor.Wait(_lock, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
            }
        }
    }

    /// <summary>Drops samples no window will need: all before <paramref name="timestamp"/> except the last of them.</summary>
    internal void DiscardBefore(long timestamp)
    {
        lock (_lock)
        {
            var keepFrom = Math.Max(0, IndexAfter(timestamp) - 1);
            _timestamps.RemoveRange(0, keepFrom);
            _watts.RemoveRange(0, keepFrom);
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
                    if (_timestamps.Count == 0 || stamp > _timestamps[^1])
                    {
                        _timestamps.Add(stamp);
                        _watts.Add(watts);
                    }
                    Monitor.PulseAll(_lock);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (++failures >= MaxConsecutiveFailures)
                {
                    lock (_lock)
                    {
                        _failure = e;
                        _thread = null;
                        Monitor.PulseAll(_lock);
                    }
                    return;
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

    private int IndexAfter(long timestamp)
    {
        var k = _timestamps.BinarySearch(timestamp);
        return k >= 0 ? k + 1 : ~k;
    }
}
