using System.CommandLine;
using ParetoPrune.Devices;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Energy;
using ParetoPrune.Devices.Meters;
using ParetoPrune.Devices.Remote;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Cli;

/// <summary>
/// A <c>--device</c> value opened: <c>local</c> (ONNX Runtime here, with <c>--meter</c> or RAPL when readable),
/// <c>http://HOST:PORT</c> (a device agent, with <c>--token-file</c>), <c>pi4-estimate</c> or a profile JSON file (estimates).
/// </summary>
sealed class DeviceSpec : IDisposable
{
    /// <summary>What Tab offers for <c>--device</c> (an agent's address and a profile file are the user's to type).</summary>
    public static readonly string[] Suggested = ["pi4-estimate", "local"];

    public const string Help = "local (ONNX Runtime here), http://HOST:PORT (a device agent on the Pi; several, comma-separated, measure in parallel), " +
                               "pi4-estimate (Raspberry Pi 4B profile), or a profile JSON file";

    readonly IDisposable? resource;

    DeviceSpec(IDevice? device, DeviceProfile? profile, string? energyNote, IDisposable? resource)
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

    /// <summary><c>--retry-window</c>: how long an agent's connection failures are retried (a service restart, a network drop).</summary>
    public static Option<double?> RetryWindowOption() => new("--retry-window")
    {
        Description = $"seconds to keep retrying a device agent that does not answer (default {new RemoteDeviceOptions().RetryWindow.TotalSeconds:0}: " +
                      "long enough for systemd to restart it)",
    };

    /// <summary>Refuses <c>--retry-window</c> where no device is an agent: it would silently do nothing.</summary>
    public static void CheckRetryWindow(double? seconds, params string?[] devices)
    {
        if (seconds is not null && !devices.Any(IsAgent))
            throw new UserInputException("--retry-window applies to a device agent (--device http://…)");
    }

    static bool IsAgent(string? spec) => spec is not null &&
        (spec.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || spec.StartsWith("https://", StringComparison.OrdinalIgnoreCase));

    /// <param name="retryWindowSeconds">For an agent: <see cref="RemoteDeviceOptions.RetryWindow"/> (its default if null).</param>
    /// <param name="perBoard">With several agents (<c>http://pi1:8642,http://pi2:8642</c>, one token file for all): measure every
    /// model on every board, rather than on the first free one (<see cref="DeviceFleet"/>).</param>
    public static async Task<DeviceSpec> OpenAsync(string spec, string? meter, FileInfo? tokenFile, CancellationToken ct, double? retryWindowSeconds = null,
                                                   bool perBoard = false)
    {
        var parts = spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length > 1 || perBoard)
        {
            if (!parts.All(IsAgent)) throw new UserInputException($"a list of devices must be device agents, http://HOST:PORT,http://HOST:PORT; '{spec}' is not");
            if (parts.Distinct(StringComparer.OrdinalIgnoreCase).Count() != parts.Length) throw new UserInputException($"--device lists a board twice: {spec}");
            var opened = new List<DeviceSpec>();
            try
            {
                foreach (string part in parts) opened.Add(await OpenAsync(part, meter, tokenFile, ct, retryWindowSeconds));
            }
            catch
            {
                foreach (var board in opened) board.Dispose();
                throw;
            }
            var fleet = new DeviceFleet(opened.Select((b, i) => (b.Device!, new Uri(parts[i]).Authority)).ToList(), perBoard);
            return new DeviceSpec(fleet, null, null, new Disposables(opened));
        }
        if (spec == "local")
        {
            IEnergyMeter? energyMeter = null;
            string? note = null;
            if (meter is not null) energyMeter = MeterSpec.Parse(meter);
            else if (RaplEnergyMeter.TryOpen(RaplEnergyMeter.DefaultRoot, out var rapl, out string? reason)) energyMeter = rapl;
            else note = $"no meter given, and RAPL is not available: {reason}";
            if (energyMeter is null && note is null) note = "--meter none: no energy meter";
            return new DeviceSpec(new HostDevice(energyMeter), null, note, energyMeter);
        }
        if (meter is not null) throw new UserInputException("--meter applies to --device local; a device agent reads its own meter and an estimate has none");
        if (IsAgent(spec))
        {
            var token = tokenFile ?? throw new UserInputException("--device http://… needs --token-file with the agent's token");
            var options = new RemoteDeviceOptions();
            if (retryWindowSeconds is { } seconds)
            {
                if (!double.IsFinite(seconds) || seconds < 0) throw new UserInputException($"--retry-window must be a number of seconds, 0 or more; got {seconds}");
                options = options with { RetryWindow = TimeSpan.FromSeconds(seconds) };
            }
            var remote = await RemoteDevice.ConnectAsync(new Uri(spec), AgentToken.Read(token.FullName), options, ct);
            return new DeviceSpec(remote, null, null, remote);
        }
        var profile = spec == "pi4-estimate" ? DeviceProfile.RaspberryPi4B
            : File.Exists(spec) ? DeviceProfile.Load(spec)
            : throw new UserInputException($"--device must be local, http://HOST:PORT, pi4-estimate or a profile JSON file; '{spec}' is none of them");
        return new DeviceSpec(null, profile, null, null);
    }

    /// <summary>
    /// Where a run's latency and energy come from: <paramref name="device"/> measures them (energy only with a meter) or its
    /// profile estimates them; a measuring <paramref name="latencyDevice"/> takes over latency.
    /// </summary>
    public static DeviceTargets Targets(DeviceSpec device, DeviceSpec? latencyDevice, bool latency, bool energy)
    {
        if (latencyDevice is { Device: null }) throw new UserInputException("--latency-device must be a measuring device (local or http://…); estimates come from --device");
        return new DeviceTargets(LatencyDevice: latency ? latencyDevice?.Device ?? device.Device : null,
                                 EnergyDevice: energy && device.MeasuresEnergy ? device.Device : null,
                                 Profile: device.Profile);
    }

    /// <summary>The device itself, or an estimating device over the model's counts.</summary>
    public IDevice AsDevice() => Device ?? new EstimatedDevice(Profile!, (bytes, shape) =>
    {
        var model = OnnxModel.Parse(bytes);
        var cost = ModelCost.Analyze(model, shape.Select(d => (long)d).ToArray());
        return DeviceCounts.Of(model, cost);
    });

    public void Dispose() => resource?.Dispose();

    sealed class Disposables(IEnumerable<IDisposable> items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items) item.Dispose();
        }
    }
}
