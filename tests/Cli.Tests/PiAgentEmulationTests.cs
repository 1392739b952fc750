using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// The lean agent for the Pi (src/Agent), published for linux-arm64 and run under user-mode emulation
/// (<c>qemu-aarch64-static</c> with Debian's arm64 libraries), measured from the x86 CLI over real HTTP, with a fake
/// INA260 sysfs tree of known power as its meter. ONNX Runtime reads <c>/proc/cpuinfo</c> to pick its ARM kernels and
/// crashes on the host's x86 one, so the agent sees a Raspberry Pi 4's, bind-mounted in a private mount namespace.
/// </summary>
public sealed class PiAgentEmulationTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("pi-agent-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>The publish size the README promises.</summary>
    const long SizeLimit = 80L * 1024 * 1024;

    [FactWithArm64Emulation]
    public async Task TheArm64AgentMeasuresAModelOverHttpWithItsMeter()
    {
        string agent = PublishAgent();
        long size = Directory.EnumerateFiles(Path.GetDirectoryName(agent)!, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        Assert.True(size < SizeLimit, $"the linux-arm64 agent is {size / 1048576.0:0.0} MB");
        // Devices and ONNX Runtime only: no ML.NET, TorchSharp, plotting, or the Windows ONNX Runtime DLL.
        Assert.DoesNotContain(Directory.EnumerateFiles(Path.GetDirectoryName(agent)!, "*.dll").Select(Path.GetFileName),
                              n => n!.StartsWith("Microsoft.ML.", StringComparison.Ordinal) && n != "Microsoft.ML.OnnxRuntime.dll"
                                   || n.StartsWith("TorchSharp", StringComparison.Ordinal) || n.StartsWith("ScottPlot", StringComparison.Ordinal)
                                   || n.StartsWith("SkiaSharp", StringComparison.Ordinal) || n == "onnxruntime.dll");

        // A Pi 4's cpuinfo, and an INA260 that reads 4.2 W.
        string cpuinfo = Path.Combine(directory, "cpuinfo");
        File.WriteAllText(cpuinfo, string.Concat(Enumerable.Range(0, 4).Select(i =>
            $"processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n"))
            + "Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n");
        string sensor = Path.Combine(directory, "sys", "devices", "hwmon2-ina260"), hwmon = Path.Combine(directory, "sys", "class", "hwmon");
        Directory.CreateDirectory(sensor);
        Directory.CreateDirectory(hwmon);
        File.WriteAllText(Path.Combine(sensor, "name"), "ina260\n");
        File.WriteAllText(Path.Combine(sensor, "power1_input"), "4200000\n");
        // 50 ms between samples: at 2 ms, under emulation, the sampling thread alongside the request threads made the agent
        // compute a wrong SHA-256 of the token and fail inside .NET's reflection (qemu-user 7.2 running threads that share
        // memory; the same binaries are correct on x64 and with slower sampling). A real Pi is not emulated.
        File.WriteAllText(Path.Combine(sensor, "update_interval"), "50\n");
        Directory.CreateSymbolicLink(Path.Combine(hwmon, "hwmon2"), sensor);
        string token = Path.Combine(directory, "token");
        File.WriteAllText(token, "0123456789abcdef0123456789abcdef\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(token, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0)) { probe.Start(); port = ((IPEndPoint)probe.LocalEndpoint).Port; }

        var start = new ProcessStartInfo("unshare") { RedirectStandardOutput = true, RedirectStandardError = true };
        // The Pi 4's core: with qemu's default CPU model (every feature it emulates) the agent's token check failed.
        foreach (string arg in new[] { "-m", "sh", "-c", "mount --bind \"$0\" /proc/cpuinfo && exec qemu-aarch64-static -cpu cortex-a72 \"$@\"", cpuinfo,
                                       agent, "--listen", $"127.0.0.1:{port}", "--token-file", token, "--meter", $"ina2xx:ina260@{hwmon}",
                                       // The memory probe starts the agent again: an arm64 program this host runs only
                                       // through qemu by hand (no binfmt here); a real Pi runs it natively.
                                       "--no-memory-probe" })
            start.ArgumentList.Add(arg);
        // The agent is a program of its own: none of the test host's runtime settings.
        foreach (string name in start.Environment.Keys.Where(k => k.StartsWith("DOTNET_", StringComparison.Ordinal) || k.StartsWith("COMPlus_", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(name);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        try
        {
            string? ready = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromMinutes(3));
            if (ready?.Contains("agent listening") != true) Assert.Fail($"{ready}\n{await Finished(process, errors)}");
            Assert.Contains("INA260 via hwmon2 (power1_input, 50 ms)", ready);

            var (code, output, error) = await CliRunner.RunAsync("measure", CliRunner.Fixture("resnet_tiny.onnx"), "--device", $"http://127.0.0.1:{port}",
                                                                 "--token-file", token, "--measure-budget", "1", "--json");
            if (code != 0) Assert.Fail($"{error}\nagent: {(process.HasExited ? $"exited with {process.ExitCode}" : "running")}\n{await Finished(process, errors)}");
            var root = JsonDocument.Parse(output).RootElement;
            string provenance = root.GetProperty("provenance").GetString()!;
            Assert.StartsWith("measured on", provenance);
            Assert.Contains("arm64", provenance);
            Assert.Contains("INA260", provenance);
            var measurement = root.GetProperty("measurement");
            Assert.True(measurement.GetProperty("latency").GetProperty("runs").GetInt32() >= 20);
            var energy = measurement.GetProperty("energy");
            Assert.Equal(4.2, energy.GetProperty("averageWatts").GetDouble(), 6);
            // Energy per inference: the meter's power over the window of back-to-back inferences, per inference.
            double seconds = TimeSpan.Parse(energy.GetProperty("window").GetString()!, System.Globalization.CultureInfo.InvariantCulture).TotalSeconds
                             / energy.GetProperty("inferences").GetInt64();
            Assert.Equal(4.2 * seconds, energy.GetProperty("joulesPerInference").GetDouble(), 0.05 * 4.2 * seconds);
        }
        finally
        {
            if (!process.HasExited) process.Kill(true);
            process.WaitForExit(10_000);
        }
    }

    static async Task<string> Finished(Process process, Task<string> errors)
    {
        if (!process.HasExited) process.Kill(true);
        process.WaitForExit(10_000);
        return await errors;
    }

    /// <summary>Publishes src/Agent for linux-arm64 into artifacts/pi-agent (incremental: seconds when CI has just done it).</summary>
    static string PublishAgent()
    {
        string output = Repository.File("artifacts", "pi-agent");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "publish", Repository.File("src", "Agent", "Agent.csproj"), "-c", "Release", "-r", "linux-arm64", "-o", output, "-v", "quiet" })
            start.ArgumentList.Add(arg);
        using var publish = Process.Start(start)!;
        var log = publish.StandardOutput.ReadToEndAsync();
        string error = publish.StandardError.ReadToEnd();
        Assert.True(publish.WaitForExit(TimeSpan.FromMinutes(10)) && publish.ExitCode == 0, $"publishing the agent failed: {log.Result}{error}");
        return Path.Combine(output, "paretoprune-agent");
    }
}

/// <summary>A test that runs linux-arm64 binaries under user-mode emulation; skipped, with the reason, where the machine cannot
/// (with <c>PARETOPRUNE_REQUIRE_EMULATION=1</c>, as in CI, it runs anyway and fails).</summary>
public sealed class FactWithArm64EmulationAttribute : FactAttribute
{
    public FactWithArm64EmulationAttribute() => Skip = Environment.GetEnvironmentVariable("PARETOPRUNE_REQUIRE_EMULATION") == "1" ? null : Unavailable;

    static readonly string? Unavailable = FindReason();

    static string? FindReason()
    {
        if (!OperatingSystem.IsLinux() || System.Runtime.InteropServices.RuntimeInformation.OSArchitecture != System.Runtime.InteropServices.Architecture.X64)
            return "arm64 emulation is tested on x64 Linux";
        if (!File.Exists("/usr/bin/qemu-aarch64-static")) return "qemu-user-static is not installed (tools/install-debian-packages.sh installs it)";
        foreach (string library in new[] { "/lib/ld-linux-aarch64.so.1", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libssl.so.3" })
            if (!File.Exists(library)) return $"{library} is missing: the arm64 libraries (libstdc++6:arm64, libssl3:arm64) are not installed";
        // A private mount namespace (for the fake /proc/cpuinfo) needs root, or CAP_SYS_ADMIN in a container: try one.
        try
        {
            using var probe = Process.Start(new ProcessStartInfo("unshare", ["-m", "true"]) { RedirectStandardError = true })!;
            probe.WaitForExit(10_000);
            if (probe.ExitCode != 0) return $"unshare -m is not permitted here ({probe.StandardError.ReadToEnd().Trim()}): no private mount namespace for the fake /proc/cpuinfo";
        }
        catch (System.ComponentModel.Win32Exception) { return "unshare (util-linux) is not installed"; }
        return null;
    }
}
