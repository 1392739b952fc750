using ParetoPrune.Devices.Energy;
using ParetoPrune.Objectives.Onnx;
using System.Diagnostics;

namespace ParetoPrune.Devices.Tests;

static class TestModels
{
    /// <summary>Conv(3→channels, 3×3, pad 1) → Relu → GlobalAveragePool → Flatten → Gemm(→10); input [batch, 3, H, W].</summary>
    public static byte[] ConvNet(int channels)
    {
        var random = new Random(channels);
        float[] Values(int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5))];
        var b = new OnnxModelBuilder("convnet", 13);
        string x = b.Input("input", -1, 3, -1, -1);
        string y = b.Node("Conv", [x, b.Initializer("w", [channels, 3, 3, 3], Values(channels * 27)),
            b.Initializer("b", [channels], Values(channels))], "conv", ("pads", new long[] { 1, 1, 1, 1 }));
        y = b.Node("Relu", [y], "relu");
        y = b.Node("GlobalAveragePool", [y], "pool");
        y = b.Node("Flatten", [y], "flatten");
        y = b.Node("Gemm", [y, b.Initializer("fc_w", [10, channels], Values(10 * channels)),
            b.Initializer("fc_b", [10], Values(10))], "fc", ("transB", 1L));
        b.Output(y, -1, 10);
        return OnnxModel.ToBytes(b.Build());
    }

    /// <summary>Latency-only plan small enough for unit tests.</summary>
    public static MeasurementPlan QuickPlan => new()
    {
        WarmupRuns = 3, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(0.5), Threads = 1,
        MinimumEnergyWindow = TimeSpan.FromSeconds(0.3), IdleDuration = TimeSpan.FromSeconds(0.2),
    };
}

/// <summary>
/// A test double of <see cref="IEnergyMeter"/> that measures real elapsed time and multiplies it by a known power:
/// window k (in the order opened) draws <c>watts[k]</c> (the last one repeats), and "samples" every
/// <c>sampleInterval</c> (none: a counter). It checks the energy arithmetic, not a device.
/// </summary>
sealed class ClockPowerMeter(TimeSpan? sampleInterval, params double[] watts) : IEnergyMeter
{
    int windows;

    public string Name => "clock × known power (test)";

    public IEnergyWindow Start() => new Window(watts[Math.Min(windows++, watts.Length - 1)], sampleInterval);

    public void Dispose() { }

    sealed class Window(double watts, TimeSpan? interval) : IEnergyWindow
    {
        readonly long start = Stopwatch.GetTimestamp();

        public EnergyReading Stop()
        {
            TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
            int samples = interval is { } i ? (int)(elapsed / i) : 0;
            return new EnergyReading(watts * elapsed.TotalSeconds, elapsed, samples);
        }
    }
}

/// <summary>A meter that cannot measure, as a real one does without permission or hardware.</summary>
sealed class UnavailableMeter : IEnergyMeter
{
    public string Name => "unavailable meter (test)";
    public IEnergyWindow Start() => throw new EnergyUnavailableException("permission denied reading energy_uj");
    public void Dispose() { }
}
