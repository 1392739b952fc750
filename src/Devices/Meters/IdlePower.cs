namespace ParetoPrune.Devices.Meters;

/// <summary>
/// Board power at rest, measured on the same setup before a run, so the dynamic part of an inference's energy,
/// (E − P_idle·T)/N, can be separated from what the board draws anyway.
/// </summary>
/// <param name="Samples">Power samples inside the measured window.</param>
public sealed record IdlePower(double Watts, int Samples, TimeSpan Duration)
{
    /// <summary>Samples <paramref name="meter"/> for <paramref name="duration"/> (the caller keeps the board idle).</summary>
    public static IdlePower Measure(IPowerMeter meter, TimeSpan duration)
    {
        if (duration <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(duration), duration, "The idle measurement needs a positive duration.");
        using var energy = new SampledEnergyMeter(meter, ownsMeter: false);
        var window = energy.Start();
        Thread.Sleep(duration);
        var reading = window.Stop();
        return new IdlePower(reading.AverageWatts, reading.Samples, reading.Duration);
    }
}
