using System.Net;
using System.Net.Sockets;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Remote;

namespace ParetoPrune.Devices.Tests.Agent;

/// <summary>A device agent on loopback with its own work directory, removed afterwards.</summary>
sealed class RunningAgent : IAsyncDisposable
{
    public const string Token = "test-token-0123456789abcdef";

    RunningAgent(DeviceAgent agent, string workDirectory) => (Agent, WorkDirectory) = (agent, workDirectory);

    public DeviceAgent Agent { get; }
    public string WorkDirectory { get; }
    public Uri Address => Agent.Address;

    public static async Task<RunningAgent> StartAsync(IDevice device, Func<AgentOptions, AgentOptions>? configure = null, int port = 0)
    {
        string work = Path.Combine(Path.GetTempPath(), "paretoprune-agent-test-" + Guid.NewGuid().ToString("N"));
        var options = new AgentOptions($"http://127.0.0.1:{port}", Token, device) { WorkDirectory = work, RetryAfter = TimeSpan.FromSeconds(1) };
        var agent = new DeviceAgent(configure is null ? options : configure(options));
        await agent.StartAsync();
        return new RunningAgent(agent, work);
    }

    /// <summary>A client that retries quickly, so failing tests fail fast.</summary>
    public RemoteDevice Remote(string token = Token, HttpMessageHandler? handler = null) =>
        new(Address, token, new RemoteDeviceOptions { InitialBackoff = TimeSpan.FromMilliseconds(50), MeasureTimeout = TimeSpan.FromSeconds(20) }, handler);

    /// <summary>A plain client for checking raw statuses.</summary>
    public HttpClient Http(string? token = Token)
    {
        var http = new HttpClient { BaseAddress = Address, Timeout = TimeSpan.FromSeconds(20) };
        if (token is not null) http.DefaultRequestHeaders.Authorization = new("Bearer", token);
        return http;
    }

    public string[] Uploads => Directory.Exists(WorkDirectory) ? Directory.GetFiles(WorkDirectory) : [];

    public async ValueTask DisposeAsync()
    {
        await Agent.DisposeAsync();
        if (Directory.Exists(WorkDirectory)) Directory.Delete(WorkDirectory, recursive: true);
    }

    /// <summary>A port free a moment ago, for an agent that starts after its client.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>The multipart body of POST /v1/measure, as the protocol documents it.</summary>
    public static MultipartFormDataContent MeasureContent(byte[] model, string requestJson)
    {
        var content = new MultipartFormDataContent
        {
            { new StringContent(requestJson, System.Text.Encoding.UTF8, "application/json"), "request" },
            { new ByteArrayContent(model), "model", "model.onnx" },
        };
        return content;
    }
}

/// <summary>A test double of <see cref="IDevice"/> that holds each measurement until the test opens the gate, then
/// measures for real with the inner device: it makes "the device is busy" deterministic.</summary>
sealed class GatedDevice(IDevice inner) : IDevice
{
    readonly TaskCompletionSource gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly TaskCompletionSource entered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public string Name => inner.Name;

    /// <summary>Completes when the first measurement has reached the device.</summary>
    public Task Entered => entered.Task;

    public void Open() => gate.TrySetResult();

    public async Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default)
    {
        entered.TrySetResult();
        await gate.Task.WaitAsync(ct);
        return await inner.MeasureAsync(onnxModel, inputShape, plan, ct);
    }
}

/// <summary>Records the status of every answer a client receives.</summary>
sealed class StatusRecorder() : DelegatingHandler(new SocketsHttpHandler())
{
    readonly List<HttpStatusCode> seen = [];
    readonly TaskCompletionSource sawBusy = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public HttpStatusCode[] Seen { get { lock (seen) return [.. seen]; } }
    public Task SawBusy => sawBusy.Task;

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        var response = await base.SendAsync(request, ct);
        lock (seen) seen.Add(response.StatusCode);
        if (response.StatusCode == HttpStatusCode.ServiceUnavailable) sawBusy.TrySetResult();
        return response;
    }
}
