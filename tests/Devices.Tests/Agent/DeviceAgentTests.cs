using System.Net;
using System.Text.Json;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Remote;

namespace ParetoPrune.Devices.Tests.Agent;

/// <summary>The agent and its client end to end, over real HTTP on loopback, measuring real ONNX models.</summary>
public class DeviceAgentTests
{
    static readonly byte[] Model = TestModels.ConvNet(channels: 4);
    static readonly int[] Shape = [3, 8, 8];
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    static readonly MeasurementPlan LatencyPlan = new()
    {
        WarmupRuns = 2, MinimumRuns = 5, TimeBudget = TimeSpan.FromSeconds(0.1), Threads = 1,
    };

    static readonly MeasurementPlan EnergyPlan = LatencyPlan with
    {
        MinimumEnergyWindow = TimeSpan.FromSeconds(0.2), MinimumPowerSamples = 10, IdleDuration = TimeSpan.FromSeconds(0.1),
    };

    static string RequestJson(int[] shape, MeasurementPlan plan) =>
        JsonSerializer.Serialize(new { inputShape = shape, plan }, new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
        });

    static async Task<(HttpStatusCode Status, string Error, int BodyStatus)> ErrorOf(HttpResponseMessage response)
    {
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, json.RootElement.GetProperty("error").GetString()!, json.RootElement.GetProperty("status").GetInt32());
    }

    static async Task WaitUntil(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"gave up waiting for {what}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task MeasuresOverHttpWithLatencyEnergyAndProvenance()
    {
        // Idle windows draw 2 W, the inference window 5 W; the idle reading afterwards sees the last figure, 2 W.
        using var meter = new ClockPowerMeter(TimeSpan.FromMilliseconds(10), 2.0, 5.0, 2.0);
        await using var agent = await RunningAgent.StartAsync(new HostDevice(meter, "pi-test"), o => o with { Meter = meter });
        using var remote = agent.Remote();

        var m = await remote.MeasureAsync(Model, Shape, EnergyPlan);

        Assert.True(m.Latency.Runs >= EnergyPlan.MinimumRuns);
        Assert.True(m.Latency.MedianMs > 0 && m.InferencesPerSecond > 0);
        var e = Assert.IsType<EnergyFigures>(m.Energy);
        Assert.Null(m.EnergyUnavailableReason);
        Assert.Equal(5.0, e.AverageWatts, 6);
        Assert.Equal(2.0, e.IdleWatts!.Value, 6);
        Assert.True(e.JoulesPerInference > 0 && e.DynamicJoulesPerInference > 0 && e.Inferences > 0 && e.PowerSamples > 0);
        Assert.True(e.Window >= EnergyPlan.MinimumEnergyWindow);

        var p = m.Provenance;
        Assert.True(p.IsMeasurement);
        Assert.Equal("pi-test", p.Device);
        Assert.Equal(meter.Name, p.Meter);
        Assert.StartsWith("ONNX Runtime 1.", p.Runtime);
        Assert.Equal(1, p.Threads);
        Assert.StartsWith("measured on pi-test (", p.Description);
        Assert.Equal("pi-test", remote.Name);

        var idle = await remote.MeasureIdleAsync(TimeSpan.FromSeconds(0.1));
        Assert.Equal(2.0, idle.Watts, 6);
        Assert.True(idle.Duration >= TimeSpan.FromSeconds(0.1));

        var status = await remote.GetStatusAsync();
        Assert.Equal(("pi-test", meter.Name, 1L, 0, 0), (status.Device, status.Meter, status.Measurements, status.Busy, status.Queued));
        Assert.StartsWith("ONNX Runtime 1.", status.Runtime);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public async Task ASecondIdenticalRequestIsAnsweredFromTheCache()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice(name: "pi-cache"));
        using var remote = agent.Remote();

        var first = await remote.MeasureAsync(Model, Shape, LatencyPlan);
        var again = await remote.MeasureAsync([.. Model], [.. Shape], LatencyPlan with { });
        Assert.Same(first, again);
        Assert.Equal(1, (await remote.GetStatusAsync()).Measurements);

        // Another plan is another measurement.
        await remote.MeasureAsync(Model, Shape, LatencyPlan with { BatchSize = 2 });
        Assert.Equal(2, (await remote.GetStatusAsync()).Measurements);
        Assert.Null(first.Energy);
        Assert.Contains("no energy meter", first.EnergyUnavailableReason);
    }

    [Fact]
    public async Task AWrongOrMissingTokenIsRefused()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice(name: "pi-auth"));
        using var remote = agent.Remote(token: "not-the-agents-token-123");

        var e = await Assert.ThrowsAsync<DeviceAgentException>(() => remote.MeasureAsync(Model, Shape, LatencyPlan));
        Assert.Equal(401, e.StatusCode);
        Assert.Contains("refused the token", e.Message);

        using (var anonymous = agent.Http(token: null))
        {
            var (status, error, bodyStatus) = await ErrorOf(await anonymous.GetAsync("v1/status"));
            Assert.Equal((HttpStatusCode.Unauthorized, 401), (status, bodyStatus));
            Assert.Contains("Authorization", error);
        }
        using (var wrong = agent.Http(token: "not-the-agents-token-123"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await wrong.GetAsync("v1/status")).StatusCode);
            var response = await wrong.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        }
        using (var right = agent.Http())
            Assert.Equal(HttpStatusCode.OK, (await right.GetAsync("v1/status")).StatusCode);
        Assert.Equal(0, (await agent.Remote().GetStatusAsync()).Measurements);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public void TheAgentRefusesAShortTokenAndHidesItsToken()
    {
        var e = Assert.Throws<ArgumentException>(() => new DeviceAgent(new AgentOptions("http://127.0.0.1:0", "short", new HostDevice())));
        Assert.Contains("at least 16", e.Message);
        Assert.DoesNotContain(RunningAgent.Token, new AgentOptions("http://127.0.0.1:0", RunningAgent.Token, new HostDevice()).ToString());
    }

    [Fact]
    public async Task AnOversizedUploadIsAnswered413()
    {
        byte[] big = TestModels.ConvNet(channels: 256);
        await using var agent = await RunningAgent.StartAsync(new HostDevice(), o => o with { MaxUploadBytes = 8 * 1024 });
        Assert.True(big.Length > 8 * 1024);
        using var http = agent.Http();

        // With a Content-Length the agent answers before reading; chunked, it counts the model part as it arrives.
        var (status, error, bodyStatus) = await ErrorOf(await http.PostAsync("v1/measure", RunningAgent.MeasureContent(big, RequestJson(Shape, LatencyPlan))));
        Assert.Equal((HttpStatusCode.RequestEntityTooLarge, 413), (status, bodyStatus));
        Assert.Contains("larger than this agent accepts", error);

        using var chunked = new HttpRequestMessage(HttpMethod.Post, "v1/measure") { Content = RunningAgent.MeasureContent(big, RequestJson(Shape, LatencyPlan)) };
        chunked.Headers.TransferEncodingChunked = true;
        (status, error, bodyStatus) = await ErrorOf(await http.SendAsync(chunked));
        Assert.Equal((HttpStatusCode.RequestEntityTooLarge, 413), (status, bodyStatus));

        using var remote = agent.Remote();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => remote.MeasureAsync(big, Shape, LatencyPlan));
        Assert.Contains("larger than this agent accepts", e.Message);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public async Task AModelOnnxRuntimeRejectsIsAnswered422WithItsMessage()
    {
        byte[] garbage = [.. System.Text.Encoding.ASCII.GetBytes("this is not an ONNX model"), .. new byte[100]];
        await using var agent = await RunningAgent.StartAsync(new HostDevice());
        using var http = agent.Http();

        var (status, error, bodyStatus) = await ErrorOf(await http.PostAsync("v1/measure", RunningAgent.MeasureContent(garbage, RequestJson(Shape, LatencyPlan))));
        Assert.Equal((HttpStatusCode.UnprocessableEntity, 422), (status, bodyStatus));
        Assert.Contains("ONNX Runtime", error);
        Assert.Contains("rejected the model", error);

        using var remote = agent.Remote();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => remote.MeasureAsync(garbage, Shape, LatencyPlan));
        Assert.Contains("rejected the model", e.Message);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public async Task AModelWithExternalDataIsRefusedWithoutReadingTheFileItNames()
    {
        // A secret the agent's process could read, named by a relative path as an uploaded model's external data: the
        // agent must neither load it nor echo it (ONNX Runtime would resolve it against the working directory).
        string secretDirectory = Directory.CreateTempSubdirectory("agent-secret-").FullName;
        try
        {
            string secret = Path.Combine(secretDirectory, "secret.txt");
            File.WriteAllText(secret, "TOP-SECRET-CONTENT-" + new string('x', 400));
            var model = Objectives.Onnx.OnnxModel.Parse(Model);
            var weight = model.Graph.Initializer.First(i => i.Name == "w");
            weight.RawData = Google.Protobuf.ByteString.Empty;
            weight.DataLocation = Objectives.Onnx.Proto.TensorProto.Types.DataLocation.External;
            weight.ExternalData.Add(new Objectives.Onnx.Proto.StringStringEntryProto { Key = "location", Value = Path.GetRelativePath(Environment.CurrentDirectory, secret) });
            byte[] hostile = Objectives.Onnx.OnnxModel.ToBytes(model);

            await using var agent = await RunningAgent.StartAsync(new HostDevice());
            using var http = agent.Http();
            var response = await http.PostAsync("v1/measure", RunningAgent.MeasureContent(hostile, RequestJson(Shape, LatencyPlan)));
            string body = await response.Content.ReadAsStringAsync();
            var (status, error, _) = await ErrorOf(response);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, status);
            Assert.Contains("tensor 'w' as external data", error);
            Assert.DoesNotContain("TOP-SECRET", body);
            Assert.Empty(agent.Uploads);
        }
        finally
        {
            Directory.Delete(secretDirectory, recursive: true);
        }
    }

    [Fact]
    public void ExternalDataIsFoundWhereverATensorCanBe()
    {
        var model = Objectives.Onnx.OnnxModel.Parse(Model);
        Assert.Null(OnnxExternalData.FirstExternalTensor(Model));
        // A tensor attribute of a Constant inside an If branch (a graph attribute), stored externally.
        var constant = new Objectives.Onnx.Proto.TensorProto { Name = "hidden", DataType = 1, DataLocation = Objectives.Onnx.Proto.TensorProto.Types.DataLocation.External };
        constant.Dims.Add(1);
        constant.ExternalData.Add(new Objectives.Onnx.Proto.StringStringEntryProto { Key = "location", Value = "x.bin" });
        var branch = new Objectives.Onnx.Proto.GraphProto { Name = "then" };
        var node = new Objectives.Onnx.Proto.NodeProto { OpType = "Constant" };
        node.Output.Add("c");
        node.Attribute.Add(new Objectives.Onnx.Proto.AttributeProto { Name = "value", T = constant, Type = Objectives.Onnx.Proto.AttributeProto.Types.AttributeType.Tensor });
        branch.Node.Add(node);
        var @if = new Objectives.Onnx.Proto.NodeProto { OpType = "If" };
        @if.Attribute.Add(new Objectives.Onnx.Proto.AttributeProto { Name = "then_branch", G = branch, Type = Objectives.Onnx.Proto.AttributeProto.Types.AttributeType.Graph });
        model.Graph.Node.Add(@if);
        Assert.Equal("hidden", OnnxExternalData.FirstExternalTensor(Objectives.Onnx.OnnxModel.ToBytes(model)));
        Assert.Null(OnnxExternalData.FirstExternalTensor("not a protobuf at all"u8));
    }

    [Fact]
    public async Task UnknownPathsAndMethodsAreAnsweredInJson()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice());
        using var http = agent.Http();
        var (status, error, bodyStatus) = await ErrorOf(await http.GetAsync("v1/nothing"));
        Assert.Equal((HttpStatusCode.NotFound, 404), (status, bodyStatus));
        Assert.Contains("POST /v1/measure", error);
        (status, error, bodyStatus) = await ErrorOf(await http.DeleteAsync("v1/status"));
        Assert.Equal((HttpStatusCode.MethodNotAllowed, 405), (status, bodyStatus));
        Assert.Contains("DELETE is not allowed", error);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task TheWorkFolderIsPrivateFreshAndNeverALink()
    {
        string root = Directory.CreateTempSubdirectory("agent-work-").FullName;
        try
        {
            // A folder others can read, with an upload a killed agent left behind: made private and emptied.
            string work = Path.Combine(root, "work");
            Directory.CreateDirectory(work);
            File.SetUnixFileMode(work, (UnixFileMode)0b111_101_101);
            File.WriteAllText(Path.Combine(work, "upload-0123456789abcdef01234567.onnx"), "left behind");
            await using (var agent = await RunningAgent.StartAsync(new HostDevice(), o => o with { WorkDirectory = work }))
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(work));
                Assert.Empty(Directory.GetFiles(work));
            }

            // A symbolic link planted where the folder should be is refused, not followed.
            string target = Directory.CreateDirectory(Path.Combine(root, "elsewhere")).FullName;
            string link = Path.Combine(root, "link");
            Directory.CreateSymbolicLink(link, target);
            var e = await Assert.ThrowsAsync<IOException>(() => RunningAgent.StartAsync(new HostDevice(), o => o with { WorkDirectory = link }));
            Assert.Contains("symbolic link", e.Message);
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task MalformedRequestsAreAnswered400()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice());
        using var http = agent.Http();

        async Task Expect400(HttpContent content, string fragment)
        {
            var (status, error, bodyStatus) = await ErrorOf(await http.PostAsync("v1/measure", content));
            Assert.Equal((HttpStatusCode.BadRequest, 400), (status, bodyStatus));
            Assert.Contains(fragment, error);
        }

        await Expect400(RunningAgent.MeasureContent(Model, "{not json"), "not valid JSON");
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [3, 0, 8], "plan": {}}"""), "at least 1");
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [3, 8, 8], "plan": {"minimumRuns": 0}}"""), "minimum runs");
        await Expect400(new ByteArrayContent(Model), "multipart/form-data");
        // Bounded before anything is allocated: a 63-byte model once took an agent to 3.4 GB with such a shape.
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [250000000], "plan": {}}"""), "exceeds the agent's limit of 16,777,216 values");
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [3, 8, 8], "plan": {"batchSize": 100000}}"""), "exceeds the agent's limit");
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [3, 8, 8], "plan": {"timeBudget": "1.00:00:00"}}"""), "time budget of 86400 s exceeds");
        await Expect400(RunningAgent.MeasureContent(Model, """{"inputShape": [3, 8, 8], "plan": {"threads": 4096}}"""), "threads exceed");
        await Expect400(new MultipartFormDataContent { { new StringContent(RequestJson(Shape, LatencyPlan)), "request" } }, "'model' is missing");

        // A shape the model does not take is the request's fault too.
        using var remote = agent.Remote();
        var e = await Assert.ThrowsAsync<ArgumentException>(() => remote.MeasureAsync(Model, [3, 8], LatencyPlan));
        Assert.Contains("shape", e.Message);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public async Task RequestsBeyondTheQueueAreAnswered503WithRetryAfter()
    {
        var device = new GatedDevice(new HostDevice(name: "pi-busy"));
        await using var agent = await RunningAgent.StartAsync(device, o => o with { QueueLimit = 1 });
        using var http = agent.Http();
        using var remote = agent.Remote();

        var running = http.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
        await device.Entered.WaitAsync(Patience);
        var queued = http.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
        await WaitUntil(async () => (await remote.GetStatusAsync()) is { Busy: 1, Queued: 1 }, "the second request to queue");

        var rejected = await http.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
        Assert.Equal(TimeSpan.FromSeconds(1), rejected.Headers.RetryAfter?.Delta);
        var (status, error, bodyStatus) = await ErrorOf(rejected);
        Assert.Equal((HttpStatusCode.ServiceUnavailable, 503), (status, bodyStatus));
        Assert.Contains("busy", error);

        device.Open();
        Assert.Equal(HttpStatusCode.OK, (await running.WaitAsync(Patience)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await queued.WaitAsync(Patience)).StatusCode);
        Assert.Equal(2, (await remote.GetStatusAsync()).Measurements);
        Assert.Empty(agent.Uploads);
    }

    [Fact]
    public async Task TheClientRetriesWhenTheAgentIsBusy()
    {
        var device = new GatedDevice(new HostDevice(name: "pi-retry"));
        await using var agent = await RunningAgent.StartAsync(device, o => o with { QueueLimit = 0 });
        using var http = agent.Http();
        var running = http.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
        await device.Entered.WaitAsync(Patience);

        using var recorder = new StatusRecorder();
        using var remote = agent.Remote(handler: recorder);
        var measuring = remote.MeasureAsync(Model, Shape, LatencyPlan with { BatchSize = 2 });
        await recorder.SawBusy.WaitAsync(Patience);
        device.Open();

        var m = await measuring.WaitAsync(Patience);
        Assert.Equal("pi-retry", m.Provenance.Device);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, recorder.Seen[0]);
        Assert.Equal(HttpStatusCode.OK, recorder.Seen[^1]);
        Assert.Equal(HttpStatusCode.OK, (await running.WaitAsync(Patience)).StatusCode);
    }

    [Fact]
    public async Task AModelAboveTheMemoryBudgetIsAnswered422NamingItsLargestTensor()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice(name: "pi-1gb"), o => o with { MaxMemoryBytes = 512L << 20 });
        using var http = agent.Http();
        var answer = await http.PostAsync("v1/measure", RunningAgent.MeasureContent(ModelMemoryTests.ConstantOfShapeBomb(), RequestJson([4], LatencyPlan)));
        var (status, error, bodyStatus) = await ErrorOf(answer);
        Assert.Equal((HttpStatusCode.UnprocessableEntity, 422), (status, bodyStatus));
        Assert.Contains("'make_big' (ConstantOfShape) makes a tensor of [32768 × 32768] float, 4.0 GiB", error);
        Assert.Contains("memory budget of 512.0 MiB", error);
        Assert.Empty(agent.Uploads);

        // The same agent measures a model within its budget, and keeps serving.
        using var remote = agent.Remote();
        var m = await remote.MeasureAsync(Model, Shape, LatencyPlan);
        Assert.Equal("pi-1gb", m.Provenance.Device);
        var refused = await Assert.ThrowsAsync<ArgumentException>(() => remote.MeasureAsync(ModelMemoryTests.ConstantOfShapeBomb(16384), [4], LatencyPlan));
        Assert.Contains("ConstantOfShape", refused.Message);
        Assert.Contains("1.0 GiB", refused.Message);
    }

    [Fact]
    public async Task StoppingMidMeasurementAnswers503AndTheClientRetriesOnTheAgentThatComesBack()
    {
        int port = RunningAgent.FreePort();
        // The raw answer: never 200 with an empty body, but 503 with the reason and when to retry.
        var gated = new GatedDevice(new HostDevice(name: "pi-stopping"));
        var stopping = await RunningAgent.StartAsync(gated, port: port);
        using (var http = stopping.Http())
        {
            var pending = http.PostAsync("v1/measure", RunningAgent.MeasureContent(Model, RequestJson(Shape, LatencyPlan)));
            await gated.Entered.WaitAsync(Patience);
            await stopping.DisposeAsync(); // what SIGTERM does: stop, cancelling the measurement in flight
            var answer = await pending.WaitAsync(Patience);
            Assert.Equal(TimeSpan.FromSeconds(1), answer.Headers.RetryAfter?.Delta);
            var (status, error, bodyStatus) = await ErrorOf(answer);
            Assert.Equal((HttpStatusCode.ServiceUnavailable, 503), (status, bodyStatus));
            Assert.Contains("agent stopping", error);
            Assert.Contains("retry", error);
        }

        // The client treats it as retryable: stopped mid-measurement, it measures on the agent that comes back.
        var again = new GatedDevice(new HostDevice(name: "pi-restarted"));
        var first = await RunningAgent.StartAsync(again, port: port);
        using var recorder = new StatusRecorder();
        using var remote = first.Remote(handler: recorder);
        var measuring = remote.MeasureAsync(Model, Shape, LatencyPlan);
        await again.Entered.WaitAsync(Patience);
        await first.DisposeAsync();
        await recorder.SawBusy.WaitAsync(Patience);
        await using var second = await RunningAgent.StartAsync(new HostDevice(name: "pi-restarted"), port: port);
        var m = await measuring.WaitAsync(Patience);
        Assert.Equal("pi-restarted", m.Provenance.Device);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, recorder.Seen[0]);
        Assert.Equal(HttpStatusCode.OK, recorder.Seen[^1]);
    }

    [Fact]
    public async Task TheClientRetriesUntilTheAgentIsUp()
    {
        int port = RunningAgent.FreePort();
        using var remote = new RemoteDevice(new Uri($"http://127.0.0.1:{port}"), RunningAgent.Token, new RemoteDeviceOptions
        {
            InitialBackoff = TimeSpan.FromMilliseconds(100), MaxBackoff = TimeSpan.FromMilliseconds(400), MaxAttempts = 10,
        });
        var status = remote.GetStatusAsync();
        await Task.Delay(300);
        Assert.False(status.IsCompleted);

        await using var agent = await RunningAgent.StartAsync(new HostDevice(name: "late pi"), port: port);
        Assert.Equal("late pi", (await status.WaitAsync(Patience)).Device);
        Assert.Equal("late pi", remote.Name);
    }

    [Fact]
    public async Task AnUnreachableAgentIsReportedAsSuch()
    {
        int port = RunningAgent.FreePort();
        using var remote = new RemoteDevice(new Uri($"http://127.0.0.1:{port}"), RunningAgent.Token,
            new RemoteDeviceOptions { InitialBackoff = TimeSpan.FromMilliseconds(10), MaxAttempts = 2, RetryWindow = TimeSpan.FromMilliseconds(300) });
        Assert.Equal($"agent at 127.0.0.1:{port}", remote.Name);

        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<DeviceAgentException>(() => remote.MeasureAsync(Model, Shape, LatencyPlan));
        Assert.Null(e.StatusCode);
        Assert.StartsWith($"cannot reach the device agent at http://127.0.0.1:{port}/", e.Message);
        // Tried for the whole retry window (a restarting agent comes back within it), not just MaxAttempts times.
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(300), $"gave up after {watch.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(new RemoteDeviceOptions().RetryWindow >= TimeSpan.FromSeconds(60)); // covers a systemd restart by default
    }

    [Fact]
    public async Task IdlePowerNeedsAMeter()
    {
        await using var agent = await RunningAgent.StartAsync(new HostDevice());
        using var remote = agent.Remote();
        var e = await Assert.ThrowsAsync<DeviceAgentException>(() => remote.MeasureIdleAsync(TimeSpan.FromSeconds(0.1)));
        Assert.Equal(422, e.StatusCode);
        Assert.Contains("no energy meter", e.Message);

        using var http = agent.Http();
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("v1/idle?seconds=-1", null)).StatusCode);
    }
}
