namespace ParetoPrune.Devices.Energy;

/// <summary>
/// Something that can tell how much energy the device used over a window of time: a sampled power meter (INA2xx
/// over hwmon, a USB meter) integrated over the window, or a cumulative energy counter (RAPL) read at both ends.
/// </summary>
public interface IEnergyMeter : IDisposable
{
    /// <summary>What is measured and how, for provenance (e.g. "INA260 via hwmon2 (power1_input, 8 ms)").</summary>
    string Name { get; }

    /// <summary>Starts a measurement window now; stopping it returns the energy used since.</summary>
    IEnergyWindow Start();
}

/// <summary>An open measurement window.</summary>
public interface IEnergyWindow
{
    EnergyReading Stop();
}

/// <param name="Joules">Energy over exactly the window.</param>
/// <param name="Samples">Power samples inside the window (0 for counters read only at both ends).</param>
public sealed record EnergyReading(double Joules, TimeSpan Duration, int Samples)
{
    public double AverageWatts => Duration > TimeSpan.Zero ? Joules / Duration.TotalSeconds : 0;
}

/// <summary>Energy cannot be measured here; the reason is shown instead of a number (never a zero).</summary>
public sealed class EnergyUnavailableException(string reason) : Exception(reason);
