using System.Diagnostics;
using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Energy from a power meter: samples it continuously while alive, so that every window has samples before and
/// after it, and integrates the trace over exactly the window.
/// </summary>
public sealed class SampledEnergyMeter : IEnergyMeter
{
    private readonly IPowerMeter _meter;
    private readonly bool _ownsMeter;
    private readonly PowerSampler _sampler;
    private readonly List<long> _openStarts = [];
    private readonly Lock _lock = new();
    private bool _disposed;

    /// <summary>Starts sampling and waits for the first sample, so a window started right away is covered.</summary>
    /// <param name="ownsMeter">Dispose the meter (if disposable, e.g. a USB meter's serial port) with this.</param>
    /// <param name="interval">Sampling interval; the meter's own <see cref="IPowerMeter.SampleInterval"/> if null.</param>
    public SampledEnergyMeter(IPowerMeter meter, bool ownsMeter = true, TimeSpan? interval = null)
    {
        _meter = meter;
        _ownsMeter = ownsMeter;
        _sampler = new PowerSampler(meter, interval);
        _sampler.Retain(long.MaxValue); // idle: only the latest sample
        _sampler.Start();
        try
        {
            WaitForSampleAfter(long.MinValue);
        }
        catch
        {
            _sampler.Dispose();
            throw;
        }
    }

    public string Name => _meter.Name;

    /// <summary>Samples held now: the latest only while no window is open.</summary>
    internal int SamplesHeld => _sampler.Count;

    public IEnergyWindow Start()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var start = Stopwatch.GetTimestamp();
            if (_openStarts.Count == 0)
                _sampler.Retain(start);
            _openStarts.Add(start);
            return new Window(this, start);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
                return;
            _disposed = true;
        }
        _sampler.Dispose();
        if (_ownsMeter)
            (_meter as IDisposable)?.Dispose();
    }

    private EnergyReading Stop(long start)
    {
        var duration = Stopwatch.GetElapsedTime(start);
        // End the window where the reported Duration (100 ns resolution) says it ends, so Joules/Duration is exact.
        var end = start + (long)((Int128)duration.Ticks * Stopwatch.Frequency / TimeSpan.TicksPerSecond);
        try
        {
            lock (_lock)
                ObjectDisposedException.ThrowIf(_disposed, this);
            // The edge at `end` is interpolated towards the next sample, so wait for it.
            WaitForSampleAfter(end);
            if (_sampler.OutageWithin(start, end) is { } outage)
                throw new IOException($"{_meter.Name}: {outage} during this measurement, so its energy is unknown; it answers again: measure again.");
            var trace = _sampler.Snapshot(start);
            if (trace.Count == 0 || trace.Timestamps[0] > start)
                throw new InvalidOperationException($"{_meter.Name}: the measurement lasted longer than the sampler keeps ({_sampler.Capacity} samples, " +
                                                    $"{(_sampler.Capacity * _sampler.Interval).TotalSeconds:0} s at its interval); measure in shorter windows.");
            return new EnergyReading(trace.Energy(start, end), duration, trace.SamplesIn(start, end));
        }
        finally
        {
            lock (_lock)
            {
                _openStarts.Remove(start);
                if (!_disposed)
                    _sampler.Retain(_openStarts.Count > 0 ? _openStarts.Min() : long.MaxValue);
            }
        }
    }

    private void WaitForSampleAfter(long timestamp)
    {
        // Generous: a USB meter may need several polls (each with its own timeout) to deliver one good frame.
        var limit = _sampler.Interval * 4 + TimeSpan.FromSeconds(10);
        if (!_sampler.WaitForSampleAfter(timestamp, limit))
            throw new TimeoutException($"{_meter.Name}: no power sample within {limit.TotalSeconds:0.#} s.");
    }

    private sealed class Window(SampledEnergyMeter owner, long start) : IEnergyWindow
    {
        private int _stopped;

        public EnergyReading Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
                throw new InvalidOperationException("This measurement window was already stopped.");
            return owner.Stop(start);
        }
    }
}
