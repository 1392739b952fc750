using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Remote;

/// <summary>
/// A device measured by a <see cref="DeviceAgent"/> over HTTP (a Raspberry Pi on the network). Results are cached in
/// memory by model bytes, input shape and plan, so a candidate the search meets again is not measured again.
/// Failures: <see cref="DeviceAgentException"/> (unreachable, token refused, busy, agent error), <see cref="ArgumentException"/>
/// (the agent rejected the model, shape or plan: 400, 413, 422, as <see cref="HostDevice"/> does), <see cref="TimeoutException"/>.
/// </summary>
public sealed class RemoteDevice : IDevice, IDisposable
{
    readonly HttpClient http;
    readonly RemoteDeviceOptions options;
    readonly ConcurrentDictionary<string, Measurement> cache = new(StringComparer.Ordinal);
    volatile string? deviceName;

    /// <param name="agent">The agent's address, e.g. http://pi:8642.</param>
    /// <param name="token">The agent's token (see <see cref="AgentToken.Read"/>).</param>
    /// <param name="handler">The HTTP handler; null: a new one, disposed with the device.</param>
    public RemoteDevice(Uri agent, string token, RemoteDeviceOptions? options = null, HttpMessageHandler? handler = null)
    {
        ArgumentNullException.ThrowIfNull(agent);
        if (!agent.IsAbsoluteUri || (agent.Scheme != Uri.UriSchemeHttp && agent.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"the device agent's address must be an http:// URL (got '{agent}')", nameof(agent));
        this.options = options ?? new RemoteDeviceOptions();
        this.options.Validate();
        Agent = agent;
        http = handler is null ? new HttpClient() : new HttpClient(handler, disposeHandler: false);
        // Each request gets its own deadline (a measurement takes as long as its plan).
        http.Timeout = Timeout.InfiniteTimeSpan;
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", AgentToken.Validate(token, "the device agent's token"));
    }

    /// <summary>Connects and reads the agent's status, so that <see cref="Name"/> is the device's from the start and a wrong
    /// address or token fails here rather than at the first measurement.</summary>
    public static async Task<RemoteDevice> ConnectAsync(Uri agent, string token, RemoteDeviceOptions? options = null, CancellationToken ct = default)
    {
        var device = new RemoteDevice(agent, token, options);
        try
        {
            await device.GetStatusAsync(ct);
            return device;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    public Uri Agent { get; }

    /// <summary>The agent's device name once known (after <see cref="GetStatusAsync"/> or a measurement); until then "agent at HOST:PORT".</summary>
    public string Name => deviceName ?? $"agent at {Agent.Authority}";

    public async Task<AgentStatus> GetStatusAsync(CancellationToken ct = default)
    {
        var status = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, new Uri(Agent, "v1/status")),
            options.StatusTimeout, ReadJson<AgentStatus>, ct);
        deviceName = status.Device;
        return status;
    }

    public async Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(plan);
        plan.Validate();
        byte[] request = JsonSerializer.SerializeToUtf8Bytes(new MeasureRequest(inputShape, plan), AgentJson.Options);
        string key = CacheKey(onnxModel, request);
        if (cache.TryGetValue(key, out var cached)) return cached;

        var measurement = await SendAsync(() =>
        {
            var content = new MultipartFormDataContent();
            var requestPart = new ByteArrayContent(request);
            requestPart.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            content.Add(requestPart, "request");
            var modelPart = new ByteArrayContent(onnxModel);
            modelPart.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            content.Add(modelPart, "model", "model.onnx");
            var message = new HttpRequestMessage(HttpMethod.Post, new Uri(Agent, "v1/measure")) { Content = content };
            // A 413 or 401 then comes before the model is sent, not after.
            message.Headers.ExpectContinue = true;
            return message;
        }, options.MeasureTimeout ?? ExpectedDuration(plan) + options.TimeoutMargin, ReadJson<Measurement>, ct);
        deviceName ??= measurement.Provenance.Device;
        return cache.GetOrAdd(key, measurement);
    }

    /// <summary>The board's power at rest over <paramref name="duration"/>, read by the agent's meter.</summary>
    public Task<IdlePower> MeasureIdleAsync(TimeSpan duration, CancellationToken ct = default)
    {
        if (duration <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(duration), duration, "the idle window must be positive");
        string seconds = duration.TotalSeconds.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        return SendAsync(() => new HttpRequestMessage(HttpMethod.Post, new Uri(Agent, $"v1/idle?seconds={seconds}")),
            duration + options.TimeoutMargin, ReadJson<IdlePower>, ct);
    }

    public void Dispose() => http.Dispose();

    /// <summary>Longest a plan's measurement should take on the device: the latency budget, the energy window (for a
    /// meter as slow as a 2 Hz USB meter) and both idle windows.</summary>
    static TimeSpan ExpectedDuration(MeasurementPlan plan) =>
        plan.TimeBudget + plan.EnergyWindow(TimeSpan.FromSeconds(0.5)) + (plan.MeasureIdle ? 2 * plan.IdleDuration : TimeSpan.Zero);

    static string CacheKey(byte[] model, byte[] request)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        hash.AppendData(SHA256.HashData(model));
        hash.AppendData(request);
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    async Task<T> ReadJson<T>(HttpResponseMessage response, CancellationToken ct) =>
        await response.Content.ReadFromJsonAsync<T>(AgentJson.Options, ct)
        ?? throw new DeviceAgentException($"the device agent at {Agent} answered an empty body", (int)response.StatusCode);

    /// <summary>Sends with retries on connection failures and 503, each try within <paramref name="timeout"/>.</summary>
    async Task<T> SendAsync<T>(Func<HttpRequestMessage> create, TimeSpan timeout, Func<HttpResponseMessage, CancellationToken, Task<T>> read,
        CancellationToken ct)
    {
        TimeSpan backoff = options.InitialBackoff;
        var since = System.Diagnostics.Stopwatch.StartNew();
        for (int attempt = 1; ; attempt++)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            using var request = create();
            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            }
            catch (HttpRequestException e)
            {
                if (attempt >= options.MaxAttempts && since.Elapsed >= options.RetryWindow)
                    throw new DeviceAgentException($"cannot reach the device agent at {Agent}: {e.Message} ({attempt} attempts over {since.Elapsed.TotalSeconds:0.#} s)", null, e);
                await Task.Delay(backoff, ct);
                backoff = Next(backoff);
                continue;
            }
            catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"the device agent at {Agent} did not answer within {timeout.TotalSeconds:0.#} s", e);
            }

            using (response)
            {
                if (response.IsSuccessStatusCode)
                {
                    try
                    {
                        return await read(response, deadline.Token);
                    }
                    catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
                    {
                        throw new TimeoutException($"the device agent at {Agent} did not finish its answer within {timeout.TotalSeconds:0.#} s", e);
                    }
                    catch (JsonException e)
                    {
                        throw new DeviceAgentException($"the device agent at {Agent} answered JSON this client cannot read: {e.Message}", (int)response.StatusCode, e);
                    }
                }
                string message = await ErrorMessage(response, deadline.Token);
                int status = (int)response.StatusCode;
                if (response.StatusCode == HttpStatusCode.ServiceUnavailable && attempt < options.MaxAttempts)
                {
                    // The agent knows how long its queue is: its Retry-After wins over our back-off.
                    TimeSpan wait = response.Headers.RetryAfter?.Delta ?? backoff;
                    await Task.Delay(wait < options.MaxBackoff ? wait : options.MaxBackoff, ct);
                    backoff = Next(backoff);
                    continue;
                }
                throw response.StatusCode switch
                {
                    HttpStatusCode.Unauthorized => new DeviceAgentException(
                        $"the agent at {Agent} refused the token ({message}); use the token file the agent was started with", status),
                    HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableEntity
                        when request.Method == HttpMethod.Post && request.RequestUri!.AbsolutePath.EndsWith("/measure", StringComparison.Ordinal)
                        => new ArgumentException($"the device agent at {Agent} rejected the request: {message}"),
                    HttpStatusCode.ServiceUnavailable => new DeviceAgentException(
                        $"the device agent at {Agent} was unavailable for {attempt} attempts: {message}", status),
                    _ => new DeviceAgentException($"the device agent at {Agent} answered {status} {response.ReasonPhrase}: {message}", status),
                };
            }
        }
    }

    TimeSpan Next(TimeSpan backoff) => backoff * 2 < options.MaxBackoff ? backoff * 2 : options.MaxBackoff;

    /// <summary>The agent's "error" field, or the body as text when it is not the agent's JSON (a proxy's page).</summary>
    static async Task<string> ErrorMessage(HttpResponseMessage response, CancellationToken ct)
    {
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(ct);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            return response.ReasonPhrase ?? "no message";
        }
        try
        {
            if (JsonSerializer.Deserialize<AgentError>(body, AgentJson.Options) is { Error.Length: > 0 } error) return error.Error;
        }
        catch (JsonException)
        {
        }
        body = body.Trim();
        return body.Length == 0 ? response.ReasonPhrase ?? "no message" : body.Length > 300 ? body[..300] + "…" : body;
    }
}
