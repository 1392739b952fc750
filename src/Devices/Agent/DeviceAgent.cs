using System.Globalization;
using System.Net;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using Microsoft.Net.Http.Headers;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Agent;

/// <summary>
/// The HTTP service on the Raspberry Pi: receives ONNX models, measures them with its <see cref="IDevice"/> one at a
/// time, and answers with the <see cref="Measurement"/>. Every request needs "Authorization: Bearer TOKEN".
/// <list type="bullet">
/// <item><c>GET /v1/status</c> → <see cref="AgentStatus"/>.</item>
/// <item><c>POST /v1/measure</c>, multipart/form-data with a part "request" (JSON <c>{"inputShape": [3, 32, 32],
/// "plan": {...MeasurementPlan, camelCase...}}</c>) and a part "model" (the ONNX file) → <see cref="Measurement"/>.</item>
/// <item><c>POST /v1/idle?seconds=N</c> → <see cref="IdlePower"/> over N seconds (422 without a meter).</item>
/// </list>
/// Errors are <c>{"error": "...", "status": N}</c>: 400 malformed request or shape, 401 token, 413 model too large,
/// 422 model or meter rejected (or the model would need more memory than <see cref="AgentOptions.MaxMemoryBytes"/>), 503 queue full or agent stopping (with Retry-After: both are worth a retry).
/// </summary>
public sealed class DeviceAgent : IAsyncDisposable
{
    const int RequestPartLimit = 64 * 1024;
    const double MaxIdleSeconds = 600;

    readonly AgentOptions options;
    readonly byte[] tokenHash;
    readonly SemaphoreSlim turn = new(1, 1);
    readonly CancellationTokenSource stopping = new();
    readonly string version;
    WebApplication? app;
    Uri? address;
    int admitted, busy;
    long measurements;

    /// <exception cref="ArgumentException">An option is out of range (short token, negative limits, bad listen address).</exception>
    public DeviceAgent(AgentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Device);
        if (options.MaxUploadBytes < 1) throw new ArgumentException($"the upload limit must be positive (got {options.MaxUploadBytes})");
        if (options.MaxMemoryBytes < 1) throw new ArgumentException($"the memory budget must be positive (got {options.MaxMemoryBytes})");
        if (options.QueueLimit < 0) throw new ArgumentException($"the queue limit must be 0 or more (got {options.QueueLimit})");
        if (string.IsNullOrWhiteSpace(options.WorkDirectory)) throw new ArgumentException("the agent needs a work directory for uploads");
        // Hashes have one length: comparing them leaks nothing, not even the token's length.
        tokenHash = SHA256.HashData(Encoding.UTF8.GetBytes(AgentToken.Validate(options.Token, "the agent's token")));
        ListenAddress.Parse(options.Listen);
        this.options = options;
        version = typeof(DeviceAgent).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                  ?? typeof(DeviceAgent).Assembly.GetName().Version?.ToString() ?? "unknown";
    }

    /// <summary>The address the agent listens on, with the actual port; set by <see cref="StartAsync"/>.</summary>
    public Uri Address => address ?? throw new InvalidOperationException("the agent has not been started");

    /// <summary>Binds the listen address and starts serving; returns once requests are accepted.</summary>
    public async Task StartAsync(CancellationToken ct = default)
    {
        if (app is not null) throw new InvalidOperationException("the agent is already started");
        PrepareWorkDirectory(options.WorkDirectory);
        var endpoint = ListenAddress.Parse(options.Listen);

        // The empty builder reads no appsettings.json or ASPNETCORE_* variables: what runs is what the options say.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Listen(endpoint);
            // Room for the request part and the multipart framing; the model part itself is counted exactly.
            k.Limits.MaxRequestBodySize = options.MaxUploadBytes + RequestPartLimit + 16 * 1024;
        });
        builder.Services.AddRoutingCore();
        builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning)
               .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None); // a failed start is thrown to the caller, not logged with its trace

        var web = builder.Build();
        web.Use(JsonStatusPages);
        web.Use(Authenticate);
        web.MapGet("/v1/status", Status);
        web.MapPost("/v1/measure", Measure);
        web.MapPost("/v1/idle", Idle);
        await web.StartAsync(ct);
        app = web;

        string bound = web.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
                       ?? throw new InvalidOperationException("the server reports no bound address");
        address = new Uri(bound);
    }

    /// <summary>Stops accepting requests and cancels the measurement in progress.</summary>
    public async Task StopAsync(CancellationToken ct = default)
    {
        if (app is null) return;
        await stopping.CancelAsync();
        await app.StopAsync(ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (app is not null)
        {
            await StopAsync();
            await app.DisposeAsync();
            app = null;
        }
        stopping.Dispose();
    }

    /// <summary>
    /// Uploads wait here, so nobody else may read or plant files in it: created 0700, a symbolic link refused (it could
    /// point anywhere), permissions reset (which fails, and so refuses, for another user's folder), and uploads a killed
    /// agent left behind removed.
    /// </summary>
    static void PrepareWorkDirectory(string path)
    {
        var info = new DirectoryInfo(path);
        if (info.Exists && info.LinkTarget is not null)
            throw new IOException($"the agent's work folder {path} is a symbolic link (to {info.LinkTarget}); remove it or choose another folder");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Directory.CreateDirectory(path, Private);
            try
            {
                File.SetUnixFileMode(path, Private);
            }
            catch (UnauthorizedAccessException)
            {
                throw new IOException($"the agent's work folder {path} belongs to another user; remove it or choose another folder");
            }
        }
        foreach (string stale in Directory.EnumerateFiles(path, "upload-*.onnx").Concat(Directory.EnumerateFiles(path, "upload-*.probe.json")))
            File.Delete(stale);
    }

    /// <summary>Unknown paths and wrong methods answer JSON like every other error, not an empty body.</summary>
    async Task JsonStatusPages(HttpContext ctx, RequestDelegate next)
    {
        await next(ctx);
        if (ctx.Response.HasStarted) return;
        if (ctx.Response.StatusCode == StatusCodes.Status404NotFound)
            await WriteError(ctx, StatusCodes.Status404NotFound, $"no endpoint {ctx.Request.Path}; the agent serves GET /v1/status, POST /v1/measure, POST /v1/idle");
        else if (ctx.Response.StatusCode == StatusCodes.Status405MethodNotAllowed)
            await WriteError(ctx, StatusCodes.Status405MethodNotAllowed, $"{ctx.Request.Method} is not allowed on {ctx.Request.Path}");
    }

    async Task Authenticate(HttpContext ctx, RequestDelegate next)
    {
        string? header = ctx.Request.Headers.Authorization;
        const string scheme = "Bearer ";
        bool ok = header is not null && header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)
                  && CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(header[scheme.Length..].Trim())), tokenHash);
        if (!ok)
        {
            ctx.Response.Headers.WWWAuthenticate = "Bearer";
            await WriteError(ctx, StatusCodes.Status401Unauthorized,
                header is null ? "missing 'Authorization: Bearer TOKEN' header" : "the token is not the agent's token");
            return;
        }
        await next(ctx);
    }

    Task Status(HttpContext ctx)
    {
        int running = Volatile.Read(ref busy);
        var status = new AgentStatus(options.Device.Name, RuntimeDescription(), options.Meter?.Name, running,
            Math.Max(0, Volatile.Read(ref admitted) - running), Interlocked.Read(ref measurements), options.MaxUploadBytes, version);
        return WriteJson(ctx, StatusCodes.Status200OK, status);
    }

    async Task Measure(HttpContext ctx)
    {
        if (!await Admit(ctx)) return;
        string? upload = null;
        try
        {
            if (ctx.Request.ContentLength > options.MaxUploadBytes + RequestPartLimit)
                throw TooLarge();
            var (request, path) = await ReadUpload(ctx, p => upload = p);
            await RunInTurn(ctx, async ct =>
            {
                // Read only now: queued uploads wait on disk.
                byte[] model = await File.ReadAllBytesAsync(path, ct);
                var estimate = CheckMemory(model, request);
                if (options.MemoryProbe is { } probe) await Probe(probe, path, request, estimate, ct);
                var measurement = await options.Device.MeasureAsync(model, request.InputShape, request.Plan, ct);
                Interlocked.Increment(ref measurements);
                await WriteJson(ctx, StatusCodes.Status200OK, measurement);
            });
        }
        catch (AgentRequestException e)
        {
            await WriteError(ctx, e.Status, e.Message);
        }
        catch (BadHttpRequestException e)
        {
            // Kestrel's own limits (body larger than the request size limit, a client that stalls).
            await WriteError(ctx, e.StatusCode, e.StatusCode == StatusCodes.Status413PayloadTooLarge ? TooLarge().Message : e.Message);
        }
        catch (ArgumentException e)
        {
            // HostDevice names the model when ONNX Runtime rejects it; the shape and plan are the request's fault.
            await WriteError(ctx, e.ParamName == "onnxModel" ? StatusCodes.Status422UnprocessableEntity : StatusCodes.Status400BadRequest, e.Message);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested || stopping.IsCancellationRequested)
        {
            await AnswerStopping(ctx);
        }
        catch (Exception e)
        {
            app?.Logger.LogError(e, "measurement failed");
            await WriteError(ctx, StatusCodes.Status500InternalServerError, $"the agent failed to measure the model ({e.GetType().Name}): {e.Message}");
        }
        finally
        {
            if (upload is not null) TryDelete(upload);
            Interlocked.Decrement(ref admitted);
        }
    }

    async Task Idle(HttpContext ctx)
    {
        if (!await Admit(ctx)) return;
        try
        {
            string? text = ctx.Request.Query["seconds"];
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double seconds)
                || !(seconds > 0 && seconds <= MaxIdleSeconds))
                throw new AgentRequestException(StatusCodes.Status400BadRequest, $"give ?seconds=N with 0 < N <= {MaxIdleSeconds} (got '{text}')");
            var meter = options.Meter
                        ?? throw new AgentRequestException(StatusCodes.Status422UnprocessableEntity, "this agent has no energy meter");
            // In turn like a measurement: idle power is only idle while no model runs.
            await RunInTurn(ctx, async ct =>
            {
                var duration = TimeSpan.FromSeconds(seconds);
                var window = meter.Start();
                var clock = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    // Timers may fire a little early: the window lasts at least what was asked.
                    while (clock.Elapsed < duration)
                        await Task.Delay(duration - clock.Elapsed + TimeSpan.FromMilliseconds(1), ct);
                }
                catch (OperationCanceledException)
                {
                    // Close the window so a sampling meter stops sampling; the cancellation is what is reported.
                    try { window.Stop(); } catch (Exception) { }
                    throw;
                }
                var reading = window.Stop();
                await WriteJson(ctx, StatusCodes.Status200OK, new IdlePower(reading.AverageWatts, reading.Samples, reading.Duration));
            });
        }
        catch (AgentRequestException e)
        {
            await WriteError(ctx, e.Status, e.Message);
        }
        catch (Energy.EnergyUnavailableException e)
        {
            await WriteError(ctx, StatusCodes.Status422UnprocessableEntity, $"{options.Meter?.Name}: {e.Message}");
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested || stopping.IsCancellationRequested)
        {
            await AnswerStopping(ctx);
        }
        catch (Exception e)
        {
            app?.Logger.LogError(e, "idle reading failed");
            await WriteError(ctx, StatusCodes.Status500InternalServerError, $"the agent failed to read idle power ({e.GetType().Name}): {e.Message}");
        }
        finally
        {
            Interlocked.Decrement(ref admitted);
        }
    }

    /// <summary>
    /// Refuses (422) a model whose estimated peak memory at the requested input is above the budget, before ONNX Runtime
    /// allocates anything: a 211-byte ConstantOfShape can ask for gigabytes.
    /// </summary>
    MemoryEstimate? CheckMemory(byte[] model, MeasureRequest request)
    {
        long[] shape = [request.Plan.BatchSize, .. request.InputShape.Select(d => (long)d)];
        MemoryEstimate estimate;
        try
        {
            estimate = ModelMemory.Estimate(model, shape);
        }
        catch (FormatException)
        {
            return null; // not an ONNX model: ONNX Runtime rejects it with its own words
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A flaw of the estimate must not fail the request: the watched run (if on) still guards the board.
            app?.Logger.LogWarning("the memory estimate failed ({Type}: {Message}); the model goes on to the watched run", e.GetType().Name, e.Message);
            return null;
        }
        if (estimate.PeakBytes <= options.MaxMemoryBytes) return estimate;
        throw new AgentRequestException(StatusCodes.Status422UnprocessableEntity,
            $"the model would need about {ModelMemory.Format(estimate.PeakBytes)} at an input of [{string.Join(", ", shape)}] " +
            $"({ModelMemory.Format(estimate.FileBytes)} file, {ModelMemory.Format(estimate.WeightBytes)} weights, " +
            $"{ModelMemory.Format(estimate.ActivationBytes)} of tensors alive at the peak), above this agent's memory budget of " +
            $"{ModelMemory.Format(options.MaxMemoryBytes)} (--max-memory-mb); its largest tensor: {estimate.DescribeLargest()}");
    }

    /// <summary>Runs the model once in a watched child process (<see cref="MemoryProbe"/>); 422 when it grew past the budget.</summary>
    async Task Probe(MemoryProbe probe, string path, MeasureRequest request, MemoryEstimate? estimate, CancellationToken ct)
    {
        var result = await probe.RunAsync(path, request.InputShape, request.Plan, options.MaxMemoryBytes,
                                          TimeSpan.FromSeconds(options.Limits.MaxSeconds) + TimeSpan.FromMinutes(1), ct);
        if (result.Completed && result.Crashed is null) return; // a run ONNX Runtime refused is measured below, where its error is reported with the model's
        if (result.Crashed is { } crash)
            throw new AgentRequestException(StatusCodes.Status422UnprocessableEntity,
                $"the model crashed the watched process it was first run in ({crash}); it is not run in the agent itself");
        string missed = estimate is null ? "" : $"; the estimate before it ran was {ModelMemory.Format(estimate.PeakBytes)}" +
            (estimate.Complete ? "" : $", without what follows from {string.Join(", ", estimate.Unresolved.Take(3))} (ops it cannot size)");
        throw new AgentRequestException(StatusCodes.Status422UnprocessableEntity,
            $"the model grew past this agent's memory budget of {ModelMemory.Format(options.MaxMemoryBytes)} (--max-memory-mb) when run once " +
            $"in a watched process at an input of [{string.Join(", ", new[] { request.Plan.BatchSize }.Concat(request.InputShape))}], and was stopped at " +
            $"{ModelMemory.Format(result.PeakBytes)}{missed}");
    }

    /// <summary>
    /// A request cut short: when the client left there is nobody to answer; when the agent is stopping (SIGTERM from
    /// systemd), the work in flight was cancelled, and the client is told to retry (503, Retry-After) rather than left
    /// with an empty answer. The server drains answers like this one before it stops.
    /// </summary>
    Task AnswerStopping(HttpContext ctx)
    {
        if (ctx.RequestAborted.IsCancellationRequested || !stopping.IsCancellationRequested || ctx.Response.HasStarted) return Task.CompletedTask;
        int seconds = Math.Max(1, (int)Math.Ceiling(options.RetryAfter.TotalSeconds));
        ctx.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        ctx.Response.Headers.Connection = "close";
        return WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
            "agent stopping: the measurement was cancelled before it finished; retry when the agent is back, or on another device");
    }

    /// <summary>Counts the request into the queue; answers 503 and returns false when the queue is full.
    /// An admitted request must leave with <c>Interlocked.Decrement(ref admitted)</c>.</summary>
    async Task<bool> Admit(HttpContext ctx)
    {
        if (Interlocked.Increment(ref admitted) <= 1 + options.QueueLimit) return true;
        Interlocked.Decrement(ref admitted);
        int seconds = Math.Max(1, (int)Math.Ceiling(options.RetryAfter.TotalSeconds));
        ctx.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        await WriteError(ctx, StatusCodes.Status503ServiceUnavailable,
            $"the device is busy: 1 measurement running and {options.QueueLimit} queued; retry in {seconds} s");
        return false;
    }

    /// <summary>Runs <paramref name="work"/> alone on the device, cancelled when the client leaves or the agent stops.</summary>
    async Task RunInTurn(HttpContext ctx, Func<CancellationToken, Task> work)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping.Token);
        await turn.WaitAsync(cts.Token);
        try
        {
            Volatile.Write(ref busy, 1);
            await work(cts.Token);
        }
        finally
        {
            Volatile.Write(ref busy, 0);
            turn.Release();
        }
    }

    /// <summary>Reads the "request" and "model" parts; the model goes to a new file, reported to <paramref name="created"/> for deletion.</summary>
    async Task<(MeasureRequest Request, string ModelPath)> ReadUpload(HttpContext ctx, Action<string> created)
    {
        const string expected = "expected multipart/form-data with a part 'request' (JSON: inputShape, plan) and a part 'model' (the ONNX file)";
        if (!MediaTypeHeaderValue.TryParse(ctx.Request.ContentType, out var mediaType)
            || !mediaType.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(mediaType.Boundary).Value is not { Length: > 0 } boundary)
            throw BadRequest($"{expected}; got Content-Type '{ctx.Request.ContentType}'");

        var ct = ctx.RequestAborted;
        // The reader's own section limit would answer 400; the model part is counted below to answer 413.
        var reader = new MultipartReader(boundary, ctx.Request.Body) { BodyLengthLimit = null };
        MeasureRequest? request = null;
        string? path = null;
        try
        {
            while (await reader.ReadNextSectionAsync(ct) is { } section)
            {
                if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out var disposition))
                    throw BadRequest($"{expected}; a part has no Content-Disposition");
                string name = HeaderUtilities.RemoveQuotes(disposition.Name).Value ?? "";
                switch (name)
                {
                    case "request" when request is null:
                        request = await ReadRequest(section.Body, ct);
                        break;
                    case "model" when path is null:
                        path = Path.Combine(options.WorkDirectory, $"upload-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12))}.onnx");
                        created(path);
                        await CopyLimited(section.Body, path, ct);
                        break;
                    case "request" or "model":
                        throw BadRequest($"{expected}; the part '{name}' appears twice");
                    default:
                        throw BadRequest($"{expected}; got an unknown part '{name}'");
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw BadRequest($"{expected}; the body is not valid multipart: {e.Message}");
        }
        if (request is null) throw BadRequest($"{expected}; the part 'request' is missing");
        if (path is null) throw BadRequest($"{expected}; the part 'model' is missing");
        return (request, path);
    }

    async Task<MeasureRequest> ReadRequest(Stream body, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + n > RequestPartLimit) throw BadRequest($"the part 'request' is larger than {RequestPartLimit} bytes");
            buffer.Write(chunk, 0, n);
        }
        MeasureRequest? request;
        try
        {
            request = JsonSerializer.Deserialize<MeasureRequest>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), AgentJson.Options);
        }
        catch (JsonException e)
        {
            throw BadRequest($"the part 'request' is not valid JSON for {{\"inputShape\": [...], \"plan\": {{...}}}}: {e.Message}");
        }
        if (request?.InputShape is not { Length: > 0 } shape) throw BadRequest("the part 'request' needs \"inputShape\", one sample's shape, e.g. [3, 32, 32]");
        if (request.Plan is null) throw BadRequest("the part 'request' needs \"plan\" (an empty object {} takes the defaults)");
        if (shape.Any(d => d < 1)) throw BadRequest($"every dimension of the input shape must be at least 1 (got [{string.Join(", ", shape)}])");
        try
        {
            request.Plan.Validate();
        }
        catch (ArgumentException e)
        {
            throw BadRequest(e.Message);
        }
        if (options.Limits.Violation(shape, request.Plan) is { } violation) throw BadRequest(violation);
        return request;
    }

    async Task CopyLimited(Stream source, string path, CancellationToken ct)
    {
        await using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true);
        var buffer = new byte[1 << 16];
        long total = 0;
        int n;
        while ((n = await source.ReadAsync(buffer, ct)) > 0)
        {
            total += n;
            if (total > options.MaxUploadBytes) throw TooLarge();
            await file.WriteAsync(buffer.AsMemory(0, n), ct);
        }
        if (total == 0) throw BadRequest("the part 'model' is empty");
    }

    AgentRequestException TooLarge() => new(StatusCodes.Status413PayloadTooLarge,
        $"the model is larger than this agent accepts ({options.MaxUploadBytes:N0} bytes)");

    static AgentRequestException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);

    static Task WriteError(HttpContext ctx, int status, string message) => WriteJson(ctx, status, new AgentError(message, status));

    static async Task WriteJson<T>(HttpContext ctx, int status, T value)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, AgentJson.Options, ctx.RequestAborted);
    }

    void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            app?.Logger.LogWarning("could not delete the upload {Path}: {Message}", path, e.Message);
        }
    }

    static string RuntimeDescription() =>
        $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}, .NET {Environment.Version}, {RuntimeInformation.OSDescription} " +
        RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
}
