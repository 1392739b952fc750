using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Cli.Tests;

/// <summary>The agent as its own process on loopback, measured through <c>measure --device http://…</c> over real HTTP.</summary>
public sealed class AgentCommandTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("agent-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>Starts <c>paretoprune agent</c> on a free loopback port; returns once it listens.</summary>
    async Task<(Process Agent, int Port, string TokenFile)> StartAgentAsync(params string[] options)
    {
        string tokenFile = Path.Combine(directory, "token");
        await File.WriteAllTextAsync(tokenFile, "0123456789abcdef0123456789abcdef\n");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"), "agent", "--listen", $"127.0.0.1:{port}", "--token-file", tokenFile }.Concat(options))
            start.ArgumentList.Add(arg);
        var agent = Process.Start(start)!;
        string? ready = await agent.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Contains("agent listening", ready);
        return (agent, port, tokenFile);
    }

    static void Stop(Process agent)
    {
        if (!agent.HasExited) agent.Kill(true);
        agent.WaitForExit(10_000);
        agent.Dispose();
    }

    static async Task<(HttpStatusCode Status, string Body, TimeSpan? RetryAfter)> PostMeasure(int port, byte[] model, string request)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromMinutes(3) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", "0123456789abcdef0123456789abcdef");
        using var content = new MultipartFormDataContent
        {
            { new StringContent(request, System.Text.Encoding.UTF8, "application/json"), "request" },
            { new ByteArrayContent(model), "model", "model.onnx" },
        };
        using var response = await http.PostAsync("v1/measure", content);
        string body = await response.Content.ReadAsStringAsync();
        // An error's message, as the client shows it; a measurement's JSON as it is.
        if (!response.IsSuccessStatusCode && body.Length > 0) body = JsonDocument.Parse(body).RootElement.GetProperty("error").GetString()!;
        return (response.StatusCode, body, response.Headers.RetryAfter?.Delta);
    }

    /// <summary>The agent process's peak resident memory (VmHWM), in bytes.</summary>
    static long PeakResident(Process process) =>
        1024 * long.Parse(File.ReadLines($"/proc/{process.Id}/status").Single(l => l.StartsWith("VmHWM:")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);

    /// <summary>ConstantOfShape to [side, side] floats, the fault matrix's 211-byte bomb; with <paramref name="hidden"/>, its
    /// size comes through NonZero, which no static estimate can size (the probe must catch it when it runs).</summary>
    static byte[] Bomb(long side, bool hidden)
    {
        var b = new OnnxModelBuilder("bomb", 13);
        string x = b.Input("input", 1, 4);
        string shape = b.Int64Initializer("shape", [2], [side, side]);
        if (hidden)
        {
            string ones = b.Node("Add", [b.Node("ConstantOfShape", [b.Int64Initializer("length", [1], [side])], "zeros"), b.Initializer("one", [1], [1f])], "ones");
            string count = b.Node("Gather", [b.Node("Shape", [b.Node("NonZero", [ones], "nonzero")], "nonzero_shape"), b.Int64Initializer("index", [1], [1])], "count", ("axis", 0L));
            shape = b.Node("Concat", [count, count], "side_by_side", ("axis", 0L));
        }
        string big = b.Node("ConstantOfShape", [shape], "make_big");
        b.Output(b.Node("Add", [x, b.Node("ReduceSum", [big], "sum", ("keepdims", 0L))], "out"), 1, 4);
        return OnnxModel.ToBytes(b.Build());
    }

    /// <summary>A model without a fixed input size whose Tile makes 16 copies of whatever it is given.</summary>
    static byte[] TiledDynamicInput()
    {
        var b = new OnnxModelBuilder("tiled", 13);
        string x = b.Input("input", -1, -1, -1);
        string tiled = b.Node("Tile", [x, b.Int64Initializer("repeats", [3], [1, 4, 4])], "tile_16x");
        b.Output(b.Node("ReduceMean", [tiled], "mean", ("keepdims", 0L)));
        return OnnxModel.ToBytes(b.Build());
    }

    const string QuickPlan = """ "plan": {"warmupRuns": 1, "minimumRuns": 3, "timeBudget": "00:00:00.2", "threads": 1} """;

    [Fact]
    public async Task HostileModelsAreRefusedWithinTheMemoryBudgetAndTheAgentKeepsServing()
    {
        var (agent, port, _) = await StartAgentAsync("--max-memory-mb", "300");
        try
        {
            // The 211-byte bomb: refused from the estimate, before ONNX Runtime allocates anything.
            var clock = Stopwatch.StartNew();
            var bomb = await PostMeasure(port, Bomb(32768, hidden: false), $$"""{"inputShape": [4], {{QuickPlan}}}""");
            log.WriteLine($"the {Bomb(32768, hidden: false).Length}-byte bomb refused in {clock.ElapsedMilliseconds} ms: {bomb.Body}");
            Assert.True(bomb.Status == HttpStatusCode.UnprocessableEntity, bomb.Body);
            Assert.Contains("'make_big' (ConstantOfShape) makes a tensor of [32768 × 32768] float, 4.0 GiB", bomb.Body);
            Assert.Contains("memory budget of 300.0 MiB", bomb.Body);

            // A large input to a dynamic-shape model, inside the input limit (16 M values): the Tile it feeds is 1 GiB.
            var dynamic = await PostMeasure(port, TiledDynamicInput(), $$"""{"inputShape": [4000, 4000], {{QuickPlan}}}""");
            Assert.True(dynamic.Status == HttpStatusCode.UnprocessableEntity, dynamic.Body);
            Assert.Contains("'tile_16x' (Tile) makes a tensor of [1 × 16000 × 16000] float, 976.6 MiB", dynamic.Body);

            // A bomb the estimate cannot size (NonZero): the watched child grows past the budget and is stopped.
            clock.Restart();
            var hidden = await PostMeasure(port, Bomb(16384, hidden: true), $$"""{"inputShape": [4], {{QuickPlan}}}""");
            log.WriteLine($"the hidden bomb refused in {clock.ElapsedMilliseconds} ms: {hidden.Body}");
            Assert.True(hidden.Status == HttpStatusCode.UnprocessableEntity, hidden.Body);
            Assert.Contains("grew past this agent's memory budget of 300.0 MiB", hidden.Body);
            Assert.Contains("nonzero (NonZero)", hidden.Body);
            // The child was stopped soon after it passed the budget (polled every 10 ms), far short of the 1 GiB it asked for.
            var stoppedAt = Regex.Match(hidden.Body, @"stopped at ([\d.]+) (MiB|GiB)");
            Assert.True(stoppedAt.Success, hidden.Body);
            double stoppedMiB = double.Parse(stoppedAt.Groups[1].Value, CultureInfo.InvariantCulture) * (stoppedAt.Groups[2].Value == "GiB" ? 1024 : 1);
            log.WriteLine($"the watched child was stopped at {stoppedMiB:0} MiB of growth");
            Assert.InRange(stoppedMiB, 300, 450);

            // The agent still measures, and never held the bombs itself.
            var fine = await PostMeasure(port, File.ReadAllBytes(CliRunner.Fixture("resnet_tiny.onnx")), $$"""{"inputShape": [3, 16, 16], {{QuickPlan}}}""");
            Assert.True(fine.Status == HttpStatusCode.OK, fine.Body);
            long peak = PeakResident(agent);
            log.WriteLine($"the agent's peak resident memory: {peak >> 20} MiB");
            Assert.True(peak < 300L << 20, $"the agent's peak resident memory was {peak >> 20} MiB");
        }
        finally
        {
            Stop(agent);
        }
    }

    [DllImport("libc", SetLastError = true)]
    static extern int kill(int pid, int signal);

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // as deployed: the model runs first in the watched child (the memory probe)
    public async Task SigtermMidMeasurementAnswers503SoTheClientRetries(bool memoryProbe)
    {
        var (agent, port, _) = await StartAgentAsync(memoryProbe ? [] : ["--no-memory-probe"]);
        try
        {
            // A measurement that would run for a minute, stopped by systemd's signal a moment after it starts.
            var pending = PostMeasure(port, File.ReadAllBytes(CliRunner.Fixture("resnet_tiny.onnx")),
                """{"inputShape": [3, 16, 16], "plan": {"minimumRuns": 100000, "timeBudget": "00:01:00", "threads": 1}}""");
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
            http.DefaultRequestHeaders.Authorization = new("Bearer", "0123456789abcdef0123456789abcdef");
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!(await http.GetStringAsync("v1/status")).Contains("\"busy\":1"))
            {
                Assert.True(DateTime.UtcNow < deadline, "the measurement never started");
                await Task.Delay(50);
            }
            Assert.Equal(0, kill(agent.Id, 15)); // SIGTERM
            var (status, body, retryAfter) = await pending.WaitAsync(TimeSpan.FromSeconds(30));
            Assert.True(status == HttpStatusCode.ServiceUnavailable, $"{(int)status}: '{body}'");
            Assert.Contains("agent stopping", body);
            Assert.NotNull(retryAfter);
            Assert.True(agent.WaitForExit(30_000), "the agent did not exit");
            Assert.Equal(0, agent.ExitCode);
        }
        finally
        {
            Stop(agent);
        }
    }

    [Fact]
    public async Task MeasureThroughTheAgentProcess()
    {
        var (agent, port, tokenFile) = await StartAgentAsync("--max-batch", "4");
        try
        {
            var (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", $"http://127.0.0.1:{port}",
                                                                 "--token-file", tokenFile, "--measure-budget", "0.5", "--json");
            Assert.True(code == 0, error);
            var root = JsonDocument.Parse(output).RootElement;
            Assert.StartsWith("measured on", root.GetProperty("provenance").GetString());
            Assert.True(root.GetProperty("measurement").GetProperty("latency").GetProperty("runs").GetInt32() >= 20);

            await File.WriteAllTextAsync(Path.Combine(directory, "wrong"), "ffffffffffffffffffffffffffffffff");
            var refused = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", $"http://127.0.0.1:{port}",
                                                   "--token-file", Path.Combine(directory, "wrong"));
            Assert.Equal(2, refused.ExitCode);
            Assert.Contains("refused the token", refused.Error);

            // The agent's own limits, set on its command line, bound what a request may ask for.
            var tooBig = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", $"http://127.0.0.1:{port}",
                                                  "--token-file", tokenFile, "--batch-size", "5");
            Assert.Equal(2, tooBig.ExitCode);
            Assert.Contains("4", tooBig.Error);
            Assert.Contains("batch", tooBig.Error);
        }
        finally
        {
            Stop(agent);
        }
    }
}
