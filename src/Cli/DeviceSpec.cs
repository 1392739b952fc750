using System.CommandLine;
using ParetoPrune.Devices;
using ParetoPrune.Devices.Remote;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Cli;

/// <summary>
/// The command line's side of <c>--device</c>: its options and checks, and what a run needs from the opened device
/// (<see cref="DeviceResolver"/> in Devices opens it, for .NET programs too).
/// </summary>
static class DeviceSpec
{
    public static string[] Suggested => DeviceResolver.Suggested;

    public const string Help = DeviceResolver.Help;

    /// <summary><c>--retry-window</c>: how long an agent's connection failures are retried (a service restart, a network drop).</summary>
    public static Option<double?> RetryWindowOption() => new("--retry-window")
    {
        Description = $"seconds to keep retrying a device agent that does not answer (default {new RemoteDeviceOptions().RetryWindow.TotalSeconds:0}: " +
                      "long enough for systemd to restart it)",
    };

    /// <summary>Refuses <c>--retry-window</c> where no device is an agent: it would silently do nothing.</summary>
    public static void CheckRetryWindow(double? seconds, params string?[] devices)
    {
        if (seconds is not null && !devices.Any(DeviceResolver.IsAgent))
            throw new UserInputException("--retry-window applies to a device agent (--device http://…)");
    }

    /// <summary><see cref="DeviceResolver.OpenAsync"/> with the command line's options.</summary>
    public static Task<ResolvedDevice> OpenAsync(string spec, string? meter, FileInfo? tokenFile, CancellationToken ct, double? retryWindowSeconds = null,
                                                 bool perBoard = false)
    {
        if (retryWindowSeconds is { } seconds && (!double.IsFinite(seconds) || seconds < 0))
            throw new UserInputException($"--retry-window must be a number of seconds, 0 or more; got {seconds}");
        return DeviceResolver.OpenAsync(spec, meter, tokenFile?.FullName, retryWindowSeconds is { } s ? TimeSpan.FromSeconds(s) : null, perBoard, ct);
    }

    /// <summary>
    /// Where a run's latency and energy come from: <paramref name="device"/> measures them (energy only with a meter) or its
    /// profile estimates them; a measuring <paramref name="latencyDevice"/> takes over latency.
    /// </summary>
    public static DeviceTargets Targets(ResolvedDevice device, ResolvedDevice? latencyDevice, bool latency, bool energy)
    {
        if (latencyDevice is { Device: null }) throw new UserInputException("--latency-device must be a measuring device (local or http://…); estimates come from --device");
        return new DeviceTargets(LatencyDevice: latency ? latencyDevice?.Device ?? device.Device : null,
                                 EnergyDevice: energy && device.MeasuresEnergy ? device.Device : null,
                                 Profile: device.Profile);
    }

    /// <summary>The device itself, or an estimating device over the model's counts.</summary>
    public static IDevice AsDevice(this ResolvedDevice device) => device.Device ?? new EstimatedDevice(device.Profile!, (bytes, shape) =>
    {
        var model = OnnxModel.Parse(bytes);
        var cost = ModelCost.Analyze(model, shape.Select(d => (long)d).ToArray());
        return DeviceCounts.Of(model, cost);
    });
}
