namespace ParetoPrune.Devices.Meters;

/// <summary>
/// An instantaneous board-power reading: an INA2xx sensor over hwmon, a USB meter. Energy comes from sampling it
/// (<see cref="PowerSampler"/>) and integrating (<see cref="PowerTrace"/>, <see cref="SampledEnergyMeter"/>).
/// </summary>
public interface IPowerMeter
{
    /// <summary>What is measured and how, for provenance (e.g. "INA260 via hwmon2 (power1_input, 8 ms)").</summary>
    string Name { get; }

    /// <summary>How often the meter can give a fresh reading; sampling faster only repeats values.</summary>
    TimeSpan SampleInterval { get; }

    /// <summary>Board power now, in watts. Throws an exception naming the device or file when it cannot be read.</summary>
    double ReadWatts();
}
