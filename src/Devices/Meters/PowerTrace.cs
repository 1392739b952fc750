using System.Diagnostics;
using System.Globalization;

namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Power samples at monotonic <see cref="Stopwatch.GetTimestamp"/> times, read as a piecewise-linear power curve:
/// energy over a window is the trapezoidal integral over exactly that window, the edges interpolated between the
/// samples either side of them.
/// </summary>
public sealed class PowerTrace
{
    private readonly long[] _timestamps;
    private readonly double[] _watts;

    /// <param name="timestamps">Strictly increasing <see cref="Stopwatch"/> timestamps.</param>
    /// <param name="watts">Power at each timestamp.</param>
    public PowerTrace(IReadOnlyList<long> timestamps, IReadOnlyList<double> watts)
    {
        if (timestamps.Count != watts.Count)
            throw new ArgumentException($"{timestamps.Count} timestamps but {watts.Count} power values.", nameof(watts));
        _timestamps = [.. timestamps];
        _watts = [.. watts];
        for (var i = 1; i < _timestamps.Length; i++)
            if (_timestamps[i] <= _timestamps[i - 1])
                throw new ArgumentException($"Timestamps must increase strictly; sample {i} is not after sample {i - 1}.", nameof(timestamps));
        foreach (var w in _watts)
            if (!double.IsFinite(w))
                throw new ArgumentException($"Power values must be finite numbers, got {w}.", nameof(watts));
    }

    public int Count => _timestamps.Length;
    public IReadOnlyList<long> Timestamps => _timestamps;
    public IReadOnlyList<double> Watts => _watts;

    /// <summary>Joules from <paramref name="fromTimestamp"/> to <paramref name="toTimestamp"/>.</summary>
    /// <exception cref="InvalidOperationException">The samples do not reach both edges of the window.</exception>
    public double Energy(long fromTimestamp, long toTimestamp)
    {
        CheckCovered(fromTimestamp, toTimestamp);
        if (fromTimestamp == toTimestamp)
            return 0;

        // First sample strictly after the window start; everything before it is the left neighbour.
        var i = FirstAfter(fromTimestamp);
        var prevT = fromTimestamp;
        var prevW = PowerAt(fromTimestamp);
        double tickWattSum = 0;
        for (; i < _timestamps.Length && _timestamps[i] < toTimestamp; i++)
        {
            tickWattSum += (_watts[i] + prevW) * (_timestamps[i] - prevT);
            prevT = _timestamps[i];
            prevW = _watts[i];
        }
        tickWattSum += (PowerAt(toTimestamp) + prevW) * (toTimestamp - prevT);
        return tickWattSum / 2 / Stopwatch.Frequency;
    }

    /// <summary>Mean watts over the window (its energy over its length).</summary>
    public double AveragePower(long fromTimestamp, long toTimestamp)
    {
        if (toTimestamp == fromTimestamp)
        {
            CheckCovered(fromTimestamp, toTimestamp);
            return PowerAt(fromTimestamp);
        }
        return Energy(fromTimestamp, toTimestamp) * Stopwatch.Frequency / (toTimestamp - fromTimestamp);
    }

    /// <summary>Samples taken within the window, both edges included.</summary>
    public int SamplesIn(long fromTimestamp, long toTimestamp) =>
        Math.Max(0, FirstAfter(toTimestamp) - FirstAtOrAfter(fromTimestamp));

    private void CheckCovered(long from, long to)
    {
        if (to < from)
            throw new ArgumentException($"The window ends {Seconds(from - to)} s before it starts.");
        if (_timestamps.Length == 0)
            throw new InvalidOperationException("The power trace has no samples, so it covers no window.");
        var first = _timestamps[0];
        var last = _timestamps[^1];
        if (from < first)
            throw new InvalidOperationException(
                $"The power trace does not cover the window: it starts {Seconds(first - from)} s after the window starts " +
                $"({_timestamps.Length} samples over {Seconds(last - first)} s).");
        if (to > last)
            throw new InvalidOperationException(
                $"The power trace does not cover the window: it ends {Seconds(to - last)} s before the window ends " +
                $"({_timestamps.Length} samples over {Seconds(last - first)} s).");
    }

    /// <summary>Linear interpolation between the samples either side of a covered time.</summary>
    private double PowerAt(long t)
    {
        var k = FirstAtOrAfter(t);
        if (_timestamps[k] == t)
            return _watts[k];
        var (t0, t1) = (_timestamps[k - 1], _timestamps[k]);
        var (w0, w1) = (_watts[k - 1], _watts[k]);
        return w0 + (w1 - w0) * ((double)(t - t0) / (t1 - t0));
    }

    private int FirstAtOrAfter(long t)
    {
        var k = Array.BinarySearch(_timestamps, t);
        return k >= 0 ? k : ~k;
    }

    private int FirstAfter(long t)
    {
        var k = Array.BinarySearch(_timestamps, t);
        return k >= 0 ? k + 1 : ~k;
    }

    private static string Seconds(long ticks) =>
        ((double)ticks / Stopwatch.Frequency).ToString("0.######", CultureInfo.InvariantCulture);
}
