using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices.Agent;

/// <summary>How a <see cref="DeviceAgent"/> listens and what it measures with.</summary>
/// <param name="Listen">Where to listen: a URL such as "http://0.0.0.0:8642", or "host:port"; port 0 picks a free
/// port (<see cref="DeviceAgent.Address"/> tells which). The host must be an IP address, "localhost", "*" or "+".</param>
/// <param name="Token">The shared secret clients send as "Authorization: Bearer TOKEN"; at least
/// <see cref="AgentToken.MinimumLength"/> characters (read it with <see cref="AgentToken.Read"/>).</param>
/// <param name="Device">What measures the uploaded models: a <see cref="HostDevice"/> with the board's meter.</param>
public sealed record AgentOptions(string Listen, string Token, IDevice Device)
{
    /// <summary>The meter <see cref="Device"/> measures with, for the status and <c>/v1/idle</c>; null: none.
    /// The agent does not dispose it.</summary>
    public IEnergyMeter? Meter { get; init; }

    /// <summary>Largest model accepted; a larger upload is answered 413.</summary>
    public long MaxUploadBytes { get; init; } = 256L * 1024 * 1024;

    /// <summary>Requests that may wait while one is measured; more are answered 503.</summary>
    public int QueueLimit { get; init; } = 4;

    /// <summary>Where uploads wait for their turn (on disk, not in memory: a Pi has little of it).</summary>
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "paretoprune-agent");

    /// <summary>The Retry-After sent with a 503 when the queue is full (whole seconds, at least 1).</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(5);

    // A record prints every property: keep the token out of logs.
    public override string ToString() =>
        $"AgentOptions {{ Listen = {Listen}, Token = (hidden), Device = {Device?.Name}, Meter = {Meter?.Name ?? "none"}, " +
        $"MaxUploadBytes = {MaxUploadBytes}, QueueLimit = {QueueLimit}, WorkDirectory = {WorkDirectory}, RetryAfter = {RetryAfter} }}";
}
