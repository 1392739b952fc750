using System.CommandLine;
using System.Runtime.InteropServices;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Agent;

/// <summary>
/// The device agent's command line, one definition for both hosts: the lean <c>paretoprune-agent</c> that runs on the Pi
/// (src/Agent: this assembly and ONNX Runtime, nothing else) and <c>paretoprune agent</c> on a workstation.
/// <c>--listen ADDR:PORT --token-file F --meter SPEC</c> and the request limits.
/// </summary>
public static class AgentCommandLine
{
    /// <summary>The command, named <paramref name="name"/>; it writes "agent listening on …" to <paramref name="output"/> once it serves.</summary>
    /// <exception cref="ArgumentException">From its action: a bad option value (the host reports it as bad input).</exception>
    /// <param name="selector">The arguments that select this command in its program (<c>["agent"]</c> in paretoprune,
    /// none where it is the root): the memory probe starts the program again with them.</param>
    public static Command Create(string name, TextWriter output, TextWriter error, IReadOnlyList<string> selector)
    {
        var listen = new Option<string>("--listen") { Description = "address and port, e.g. 0.0.0.0:8642", DefaultValueFactory = _ => "127.0.0.1:8642" };
        var tokenFile = new Option<FileInfo>("--token-file") { Description = $"file holding the bearer token (at least {AgentToken.MinimumLength} characters)", Required = true };
        var meter = new Option<string>("--meter") { Description = $"energy meter: {string.Join(", ", MeterSpec.AcceptedForms)}", DefaultValueFactory = _ => "none" };
        var maxUpload = new Option<int>("--max-upload-mb") { Description = "largest model accepted", DefaultValueFactory = _ => 256 };
        var queue = new Option<int>("--queue") { Description = "measurements that may wait while one runs", DefaultValueFactory = _ => 4 };
        var defaults = new AgentLimits();
        var maxInput = new Option<long>("--max-input-values") { Description = "largest input a request may ask for (batch × C × H × W floats; 4 bytes each)", DefaultValueFactory = _ => defaults.MaxInputValues };
        var maxBatch = new Option<int>("--max-batch") { Description = "largest batch a request may ask for", DefaultValueFactory = _ => defaults.MaxBatchSize };
        var maxSeconds = new Option<double>("--max-seconds") { Description = "longest time budget, energy window or idle window of a request", DefaultValueFactory = _ => defaults.MaxSeconds };
        var maxMemory = new Option<long>("--max-memory-mb")
        {
            Description = "most memory one measurement may need (the model, its weights and its live tensors), estimated before it runs and watched while it runs once in a child process; half of this machine's by default",
            DefaultValueFactory = _ => AgentOptions.DefaultMaxMemoryBytes >> 20,
        };
        var noProbe = new Option<bool>("--no-memory-probe")
        {
            Description = "measure without first running each model once in a watched child process (faster; the memory estimate alone guards the board)",
        };
        // The child side of the probe: this program started again by the agent, never by a user.
        var probeChild = new Option<string>("--memory-probe") { Hidden = true };
        var command = new Command(name, "Serve measurements of uploaded ONNX models over HTTP (run this on the device, e.g. a Raspberry Pi).")
        {
            listen, tokenFile, meter, maxUpload, queue, maxInput, maxBatch, maxSeconds, maxMemory, noProbe, probeChild,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            if (parse.GetValue(probeChild) is { } probeRequest) return await MemoryProbe.RunChildAsync(probeRequest, Console.In, output, error);
            string tokenPath = parse.GetRequiredValue(tokenFile).FullName;
            string token = AgentToken.Read(tokenPath);
            const UnixFileMode Others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;
            if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(tokenPath) & Others) != 0)
                error.WriteLine($"warning: the token file {tokenPath} can be read by other users of this machine; chmod 600 {tokenPath}");
            if (parse.GetValue(maxInput) < 1 || parse.GetValue(maxBatch) < 1 || !(parse.GetValue(maxSeconds) > 0) || parse.GetValue(maxMemory) < 1)
                throw new ArgumentException("--max-input-values, --max-batch, --max-seconds and --max-memory-mb must be positive");
            var energy = MeterSpec.Parse(parse.GetValue(meter)!);
            var options = new AgentOptions(parse.GetValue(listen)!, token, new HostDevice(energy))
            {
                Meter = energy, MaxUploadBytes = parse.GetValue(maxUpload) * 1024L * 1024, QueueLimit = parse.GetValue(queue),
                MaxMemoryBytes = parse.GetValue(maxMemory) << 20,
                MemoryProbe = parse.GetValue(noProbe) ? null : MemoryProbe.ForThisProgram([.. selector, "--token-file", tokenPath]),
                Limits = defaults with { MaxInputValues = parse.GetValue(maxInput), MaxBatchSize = parse.GetValue(maxBatch), MaxSeconds = parse.GetValue(maxSeconds) },
            };
            // systemd stops a service with SIGTERM: stop at once (cancelling the measurement in flight, which the client
            // retries elsewhere or later) rather than be killed 90 s later.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            void Stop(PosixSignalContext signal)
            {
                signal.Cancel = true;
                stop.Cancel();
            }
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            await using var agent = new DeviceAgent(options);
            await agent.StartAsync(stop.Token);
            output.WriteLine($"agent listening on {agent.Address} (meter: {energy?.Name ?? "none"}); Ctrl-C or SIGTERM stops it");
            output.Flush();
            try { await Task.Delay(Timeout.Infinite, stop.Token); }
            catch (OperationCanceledException) { }
            output.WriteLine("agent stopping");
            await agent.StopAsync(CancellationToken.None);
            energy?.Dispose();
            return 0;
        });
        return command;
    }
}
