using System.Text.Json;
using System.Text.Json.Serialization;

namespace ParetoPrune.Devices.Agent;

/// <summary>What <c>GET /v1/status</c> answers.</summary>
/// <param name="Device">The device's name, as measurements' provenance gives it.</param>
/// <param name="Runtime">Inference runtime and platform of the agent.</param>
/// <param name="Meter">The energy meter; null when the agent measures latency only.</param>
/// <param name="Busy">1 while a measurement (or idle reading) runs, else 0.</param>
/// <param name="Queued">Requests waiting for their turn.</param>
/// <param name="Measurements">Measurements completed since the agent started.</param>
/// <param name="MaxUploadBytes">Largest model the agent accepts.</param>
/// <param name="Version">The agent's version.</param>
public sealed record AgentStatus(string Device, string Runtime, string? Meter, int Busy, int Queued, long Measurements,
    long MaxUploadBytes, string Version);

/// <summary>The "request" part of <c>POST /v1/measure</c>.</summary>
internal sealed record MeasureRequest(int[] InputShape, MeasurementPlan Plan);

/// <summary>The body of every 4xx/5xx answer.</summary>
internal sealed record AgentError(string Error, int Status);

/// <summary>A request the agent answers with an error status and message.</summary>
internal sealed class AgentRequestException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;
}

internal static class AgentJson
{
    /// <summary>Both ends use these: camelCase names, enums by name (the plan's graph optimisation level), and
    /// NaN/Infinity allowed (a zero median's relative CI width is infinite).</summary>
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        Converters = { new JsonStringEnumConverter() },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // Messages stay readable with curl ('make_big', 32768 × 32768): the JSON is never embedded in HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
