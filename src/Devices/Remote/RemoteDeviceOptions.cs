namespace ParetoPrune.Devices.Remote;

/// <summary>Timeouts and retries of a <see cref="RemoteDevice"/>.</summary>
public sealed record RemoteDeviceOptions
{
    /// <summary>Tries per request, the first included; retried are connection failures and 503 (agent busy), never 4xx.</summary>
    public int MaxAttempts { get; init; } = 5;
    /// <summary>Connection failures are retried for at least this long, whatever <see cref="MaxAttempts"/> says: long enough
    /// for systemd to restart the agent, or a board to come back after a brief network drop.</summary>
    public TimeSpan RetryWindow { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Wait before the first retry; it doubles with each further retry.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(0.5);
    /// <summary>Longest wait between tries, a Retry-After from the agent included.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Time for one measure request; null: the plan's time budget, energy and idle windows, plus <see cref="TimeoutMargin"/>.</summary>
    public TimeSpan? MeasureTimeout { get; init; }
    /// <summary>Added to a measurement's expected length for warm-up, upload, session creation and waiting in the agent's queue.</summary>
    public TimeSpan TimeoutMargin { get; init; } = TimeSpan.FromMinutes(2);
    /// <summary>Time for a status request.</summary>
    public TimeSpan StatusTimeout { get; init; } = TimeSpan.FromSeconds(30);

    internal void Validate()
    {
        if (MaxAttempts < 1) throw new ArgumentException($"remote device: max attempts must be at least 1 (got {MaxAttempts})");
        if (RetryWindow < TimeSpan.Zero) throw new ArgumentException($"remote device: the retry window cannot be negative (got {RetryWindow})");
        if (InitialBackoff < TimeSpan.Zero || MaxBackoff < TimeSpan.Zero)
            throw new ArgumentException("remote device: back-off times must not be negative");
        if (MeasureTimeout <= TimeSpan.Zero || TimeoutMargin < TimeSpan.Zero || StatusTimeout <= TimeSpan.Zero)
            throw new ArgumentException("remote device: timeouts must be positive");
    }
}

/// <summary>The device agent could not be used: unreachable, the token refused, busy after every retry, or an agent failure.</summary>
/// <param name="StatusCode">The agent's HTTP status; null when no answer came.</param>
public sealed class DeviceAgentException(string message, int? statusCode, Exception? inner = null) : Exception(message, inner)
{
    public int? StatusCode { get; } = statusCode;
}
