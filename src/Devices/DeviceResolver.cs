using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Energy;
using ParetoPrune.Devices.Meters;
using ParetoPrune.Devices.Remote;

namespace ParetoPrune.Devices;

/// <summary>
/// A device named as the command line names it, opened: <c>local</c> (ONNX Runtime here, with a meter or RAPL when
/// readable), <c>http://HOST:PORT</c> (a device agent; several, comma-separated, measure in parallel),
/// <c>pi4-estimate</c> or a profile JSON file (estimates). Disposing it closes what it opened (a meter, a connection).
/// </summary>
public sealed class ResolvedDevice : IDisposable
{
    readonly IDisposable? resource;

    internal ResolvedDevice(IDevice? device, DeviceProfile? profile, string? energyNote, IDisposable? resource)
    {
        Device = device;
        Profile = profile;
        EnergyNote = energyNote;
        this.resource = resource;
    }

    /// <summary>The measuring device; null for an estimate.</summary>
    public IDevice? Device { get; }

    /// <summary>The profile of an estimate; null for a measuring device.</summary>
    public DeviceProfile? Profile { get; }

    /// <summary>Why a local device has no energy meter, when it has none.</summary>
    public string? EnergyNote { get; }

    public bool MeasuresEnergy => Device is not null && EnergyNote is null;

    public void Dispose() => resource?.Dispose();
}

/// <summary>Opens a device by its name (<see cref="ResolvedDevice"/>): what <c>--device</c> takes, for the command line and
/// for a .NET program alike.</summary>
public static class DeviceResolver
{
    /// <summary>What Tab offers for <c>--device</c> (an agent's address and a profile file are the user's to type).</summary>
    public static readonly string[] Suggested = ["pi4-estimate", "local"];

    public const string Help = "local (ONNX Runtime here), http://HOST:PORT (a device agent on the Pi; several, comma-separated, measure in parallel), " +
                               "pi4-estimate (Raspberry Pi 4B profile), or a profile JSON file";

    /// <summary>Whether <paramref name="spec"/> names a device agent.</summary>
    public static bool IsAgent(string? spec) => spec is not null &&
        (spec.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

    /// <param name="meter">For <c>local</c>: the energy meter (<see cref="MeterSpec"/>); RAPL where readable when null.</param>
    /// <param name="tokenFile">For an agent: the file holding its token.</param>
    /// <param name="retryWindow">For an agent: <see cref="RemoteDeviceOptions.RetryWindow"/> (its default if null).</param>
    /// <param name="perBoard">With several agents (<c>http://pi1:8642,http://pi2:8642</c>, one token file for all): measure every
    /// model on every board, rather than on the first free one (<see cref="DeviceFleet"/>).</param>
    /// <exception cref="ArgumentException">A name that is none of these, or options that do not apply to it.</exception>
    public static async Task<ResolvedDevice> OpenAsync(string spec, string? meter = null, string? tokenFile = null, TimeSpan? retryWindow = null,
                                                       bool perBoard = false, CancellationToken ct = default)
    {
        var parts = spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > 1 || perBoard)
        {
            if (!parts.All(IsAgent)) throw new ArgumentException($"a list of devices must be device agents, http://HOST:PORT,http://HOST:PORT; '{spec}' is not");
            if (parts.Distinct(StringComparer.OrdinalIgnoreCase).Count() != parts.Length) throw new ArgumentException($"--device lists a board twice: {spec}");
            var opened = new List<ResolvedDevice>();
            try
            {
                foreach (string part in parts) opened.Add(await OpenAsync(part, meter, tokenFile, retryWindow, ct: ct));
            }
            catch
            {
                foreach (var board in opened) board.Dispose();
                throw;
            }
            var fleet = new DeviceFleet(opened.Select((b, i) => (b.Device!, new Uri(parts[i]).Authority)).ToList(), perBoard);
            return new ResolvedDevice(fleet, null, null, new Disposables(opened));
        }
        if (spec == "local")
        {
            IEnergyMeter? energyMeter = null;
            string? note = null;
            if (meter is not null) energyMeter = MeterSpec.Parse(meter);
            else if (RaplEnergyMeter.TryOpen(RaplEnergyMeter.DefaultRoot, out var rapl, out string? reason)) energyMeter = rapl;
            else note = $"no meter given, and RAPL is not available: {reason}";
            if (energyMeter is null && note is null) note = "--meter none: no energy meter";
            return new ResolvedDevice(new HostDevice(energyMeter), null, note, energyMeter);
        }
        if (meter is not null) throw new ArgumentException("--meter applies to --device local; a device agent reads its own meter and an estimate has none");
        if (IsAgent(spec))
        {
            var token = tokenFile ?? throw new ArgumentException("--device http://… needs --token-file with the agent's token");
            var options = new RemoteDeviceOptions();
            if (retryWindow is { } window)
            {
                if (window < TimeSpan.Zero) throw new ArgumentException($"--retry-window must be a number of seconds, 0 or more; got {window.TotalSeconds}");
                options = options with { RetryWindow = window };
            }
            var remote = await RemoteDevice.ConnectAsync(new Uri(spec), AgentToken.Read(token), options, ct);
            return new ResolvedDevice(remote, null, null, remote);
        }
        var profile = spec == "pi4-estimate" ? DeviceProfile.RaspberryPi4B
            : File.Exists(spec) ? DeviceProfile.Load(spec)
            : throw new ArgumentException($"--device must be local, http://HOST:PORT, pi4-estimate or a profile JSON file; '{spec}' is none of them");
        return new ResolvedDevice(null, profile, null, null);
    }

    sealed class Disposables(IEnumerable<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items) item.Dispose();
        }
    }
}
