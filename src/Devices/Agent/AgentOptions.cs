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

    /// <summary>Where uploads wait for their turn (on disk, not in memory: a Pi has little of it). Made private (0700) at
    /// start, refused if it is a symbolic link or another user's, and emptied of uploads a killed agent left.</summary>
    public string WorkDirectory { get; init; } = Path.Combine(Path.GetTempPath(), $"paretoprune-agent-{Environment.UserName}");

    /// <summary>What one request may make the agent allocate and spend; the defaults fit a 1 GB Raspberry Pi.</summary>
    public AgentLimits Limits { get; init; } = new();

    /// <summary>
    /// The most memory one measurement may need, estimated before ONNX Runtime sees the model (<see cref="ModelMemory"/>:
    /// the file, its weights and the intermediate tensors at the peak, at the requested input); a model above it is answered
    /// 422 with the node that makes the largest tensor. Default: half of this machine's memory, so that a hostile or
    /// mistaken model cannot take a 1–8 GB board down.
    /// </summary>
    public long MaxMemoryBytes { get; init; } = DefaultMaxMemoryBytes;

    /// <summary>Runs each model once in a watched child process before it is measured, killed past
    /// <see cref="MaxMemoryBytes"/> (the second line, for what the estimate misses); null measures in-process only.
    /// The command line sets it; a library host that cannot start itself again leaves it null.</summary>
    public MemoryProbe? MemoryProbe { get; init; }

    /// <summary>Half of the memory this process may use (the machine's, or its container's limit).</summary>
    public static long DefaultMaxMemoryBytes => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 2;

    /// <summary>The Retry-After sent with a 503 when the queue is full (whole seconds, at least 1).</summary>
    public TimeSpan RetryAfter { get; init; } = TimeSpan.FromSeconds(5);

    // A record prints every property: keep the token out of logs.
    public override string ToString() =>
        $"AgentOptions {{ Listen = {Listen}, Token = (hidden), Device = {Device?.Name}, Meter = {Meter?.Name ?? "none"}, " +
        $"MaxUploadBytes = {MaxUploadBytes}, QueueLimit = {QueueLimit}, MaxMemoryBytes = {MaxMemoryBytes}, MemoryProbe = {(MemoryProbe is null ? "off" : "on")}, WorkDirectory = {WorkDirectory}, RetryAfter = {RetryAfter}, Limits = {Limits} }}";
}

/// <summary>Bounds on a measurement request; a request beyond any of them is answered 400 with the limit it broke.</summary>
/// <param name="MaxInputValues">Values in one inference's input (batch × sample): 16 M floats are 64 MB.</param>
public sealed record AgentLimits(long MaxInputValues = 16L << 20, int MaxBatchSize = 256, int MaxRuns = 100_000, int MaxWarmupRuns = 1_000,
                                 double MaxSeconds = 300, int MaxPowerSamples = 100_000)
{
    /// <summary>Why <paramref name="plan"/> with one sample of <paramref name="shape"/> is refused, or null.</summary>
    public string? Violation(int[] shape, MeasurementPlan plan)
    {
        long values = plan.BatchSize;
        foreach (int d in shape)
        {
            values *= d;
            if (values > MaxInputValues) break;
        }
        if (values > MaxInputValues) return $"an input of {plan.BatchSize} × [{string.Join(", ", shape)}] exceeds the agent's limit of {MaxInputValues:N0} values";
        if (plan.BatchSize > MaxBatchSize) return $"batch size {plan.BatchSize} exceeds the agent's limit of {MaxBatchSize}";
        if (plan.MinimumRuns > MaxRuns) return $"minimum runs {plan.MinimumRuns} exceeds the agent's limit of {MaxRuns}";
        if (plan.WarmupRuns > MaxWarmupRuns) return $"warm-up runs {plan.WarmupRuns} exceed the agent's limit of {MaxWarmupRuns}";
        if (plan.Threads is { } t && t > Environment.ProcessorCount) return $"{t} threads exceed this device's {Environment.ProcessorCount} cores";
        foreach (var (name, time) in new[] { ("time budget", plan.TimeBudget), ("energy window", plan.MinimumEnergyWindow), ("idle duration", plan.IdleDuration) })
            if (time.TotalSeconds > MaxSeconds) return $"the {name} of {time.TotalSeconds:0.#} s exceeds the agent's limit of {MaxSeconds:0.#} s";
        if (plan.MinimumPowerSamples > MaxPowerSamples) return $"{plan.MinimumPowerSamples} power samples exceed the agent's limit of {MaxPowerSamples}";
        return null;
    }
}
