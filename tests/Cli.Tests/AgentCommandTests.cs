using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace ParetoPrune.Cli.Tests;

/// <summary>The agent as its own process on loopback, measured through <c>measure --device http://…</c> over real HTTP.</summary>
public sealed class AgentCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("agent-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task MeasureThroughTheAgentProcess()
    {
        string tokenFile = Path.Combine(directory, "token");
        await File.WriteAllTextAsync(tokenFile, "0123456789abcdef0123456789abcdef\n");
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"), "agent", "--listen", $"127.0.0.1:{port}", "--token-file", tokenFile,
                                       "--max-batch", "4" })
            start.ArgumentList.Add(arg);
        using var agent = Process.Start(start)!;
        try
        {
            string? ready = await agent.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Contains("agent listening", ready);

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
            if (!agent.HasExited) agent.Kill(true);
            agent.WaitForExit(10_000);
        }
    }
}
