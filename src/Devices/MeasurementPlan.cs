using Microsoft.ML.OnnxRuntime;

namespace ParetoPrune.Devices;

/// <summary>
/// How to measure one model. Latency: <see cref="WarmupRuns"/> unrecorded runs, then timed runs until the 95 %
/// confidence interval of the median is narrower than <see cref="TargetRelativeCiWidth"/> × median or
/// <see cref="TimeBudget"/> is spent, whichever comes first, but never fewer than <see cref="MinimumRuns"/>.
/// Energy (only with a meter): idle window, a window of back-to-back inferences, idle window.
/// </summary>
public sealed record MeasurementPlan
{
    public int WarmupRuns { get; init; } = 10;
    public int MinimumRuns { get; init; } = 20;
    /// <summary>Stop once (CI upper − CI lower) / median is at most this.</summary>
    public double TargetRelativeCiWidth { get; init; } = 0.02;
    /// <summary>Time for the timed latency runs (warm-up and energy windows not included).</summary>
    public TimeSpan TimeBudget { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Samples per run: the input tensor is [BatchSize, ..inputShape].</summary>
    public int BatchSize { get; init; } = 1;
    /// <summary>ONNX Runtime intra-op threads; null keeps ONNX Runtime's default (one per physical core).</summary>
    public int? Threads { get; init; }
    public GraphOptimizationLevel GraphOptimization { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Shortest window of inferences over which energy is integrated.</summary>
    public TimeSpan MinimumEnergyWindow { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>
    /// Power samples the energy window should hold: a sampling meter whose interval is known (learnt from the idle
    /// window) gets a window of at least this many intervals, so a 2 Hz USB meter gets 20 s, an 8 ms INA260 stays at 2 s.
    /// </summary>
    public int MinimumPowerSamples { get; init; } = 40;
    /// <summary>Measure idle power before and after the window, for the energy above idle.</summary>
    public bool MeasureIdle { get; init; } = true;
    /// <summary>Length of each idle window.</summary>
    public TimeSpan IdleDuration { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>The energy window for a meter whose sampling interval is <paramref name="meterInterval"/> (null: unknown, or a counter).</summary>
    public TimeSpan EnergyWindow(TimeSpan? meterInterval) =>
        meterInterval is { } interval && interval * MinimumPowerSamples > MinimumEnergyWindow
            ? interval * MinimumPowerSamples
            : MinimumEnergyWindow;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting out of range.</summary>
    public void Validate()
    {
        static void Check(bool ok, string message)
        {
            if (!ok) throw new ArgumentException($"measurement plan: {message}");
        }
        Check(WarmupRuns >= 0, $"warm-up runs must be 0 or more (got {WarmupRuns})");
        Check(MinimumRuns >= 1, $"minimum runs must be at least 1 (got {MinimumRuns})");
        Check(TargetRelativeCiWidth > 0 && double.IsFinite(TargetRelativeCiWidth),
            $"target relative CI width must be a positive number (got {TargetRelativeCiWidth})");
        Check(TimeBudget >= TimeSpan.Zero, $"time budget must not be negative (got {TimeBudget})");
        Check(BatchSize >= 1, $"batch size must be at least 1 (got {BatchSize})");
        Check(Threads is null or >= 1, $"threads must be at least 1, or null for ONNX Runtime's default (got {Threads})");
        Check(Enum.IsDefined(GraphOptimization), $"unknown graph optimisation level {GraphOptimization}");
        Check(MinimumEnergyWindow > TimeSpan.Zero, $"minimum energy window must be positive (got {MinimumEnergyWindow})");
        Check(MinimumPowerSamples >= 1, $"minimum power samples must be at least 1 (got {MinimumPowerSamples})");
        Check(!MeasureIdle || IdleDuration > TimeSpan.Zero, $"idle duration must be positive when idle is measured (got {IdleDuration})");
    }
}
