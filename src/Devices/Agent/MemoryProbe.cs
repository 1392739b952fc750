using System.Diagnostics;
using System.Text.Json;

namespace ParetoPrune.Devices.Agent;

/// <summary>
/// The agent's second line against models that need more memory than the board has: before a model is measured in the
/// agent's own process, it is loaded and run once in a child process (this program again, with <c>--memory-probe</c>),
/// whose resident memory is watched and which is killed once it grows past the budget. An estimate
/// (<see cref="ModelMemory"/>) that missed a tensor, an op it does not follow, or ONNX Runtime's own allocations cannot
/// take the board down: the child dies, the agent answers 422 and keeps serving.
/// </summary>
/// <param name="FileName">The program to start: this one (<see cref="ForThisProgram"/>).</param>
/// <param name="Arguments">Arguments before <c>--memory-probe FILE</c>: the agent command and its required options.</param>
public sealed record MemoryProbe(string FileName, IReadOnlyList<string> Arguments)
{
    /// <summary>How often the child's resident memory is read: a fill of 1 GB/s overshoots by about 10 MB.</summary>
    static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(10);

    /// <summary>The probe of the running program: the same executable (or <c>dotnet</c> and the same assembly), started
    /// with <paramref name="arguments"/> before <c>--memory-probe FILE</c>.</summary>
    public static MemoryProbe ForThisProgram(IReadOnlyList<string> arguments)
    {
        string process = Environment.ProcessPath ?? throw new InvalidOperationException("this process has no path to start again");
        // Started through the dotnet host, the program is its first argument (the assembly); an apphost is the program.
        bool host = Path.GetFileNameWithoutExtension(process).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
        return new MemoryProbe(process, host ? [Environment.GetCommandLineArgs()[0], .. arguments] : [.. arguments]);
    }

    /// <summary>Runs <paramref name="modelPath"/> once at <paramref name="inputShape"/> (one sample) with the plan's batch,
    /// threads and graph optimisation in a child process, stopped if it grows by more than <paramref name="budgetBytes"/>
    /// over its size before it loaded the model.</summary>
    /// <param name="timeout">The longest the run may take (it is killed after, and reported as crashed).</param>
    public async Task<MemoryProbeResult> RunAsync(string modelPath, int[] inputShape, MeasurementPlan plan, long budgetBytes, TimeSpan timeout,
                                                  CancellationToken ct)
    {
        // Beside the upload, named after it: the agent's start-up clean-up removes what a killed agent left.
        string request = Path.Combine(Path.GetDirectoryName(modelPath)!, Path.GetFileNameWithoutExtension(modelPath) + ".probe.json");
        try
        {
            await File.WriteAllTextAsync(request, JsonSerializer.Serialize(new ProbeRequest(modelPath, inputShape, plan), AgentJson.Options), ct);
            return await RunChildAsync(request, budgetBytes, timeout, ct);
        }
        finally
        {
            File.Delete(request);
        }
    }

    async Task<MemoryProbeResult> RunChildAsync(string request, long budgetBytes, TimeSpan timeout, CancellationToken ct)
    {
        var start = new ProcessStartInfo(FileName)
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string argument in Arguments) start.ArgumentList.Add(argument);
        start.ArgumentList.Add("--memory-probe");
        start.ArgumentList.Add(request);
        using var child = Start(start);
        var errors = child.StandardError.ReadToEndAsync(ct);
        try
        {
            // The child says when its runtime is up; what it holds then is not the model's.
            string? ready = await child.StandardOutput.ReadLineAsync(ct).AsTask().WaitAsync(TimeSpan.FromMinutes(2), ct);
            if (ready != ReadyLine)
            {
                await child.WaitForExitAsync(ct);
                throw new InvalidOperationException($"the memory probe ({FileName}) did not start: {(await errors).Trim()}");
            }
            long baseline = ResidentBytes(child), peak = 0;
            _ = child.StandardOutput.ReadToEndAsync(ct); // drained: a child that writes cannot block on a full pipe
            await child.StandardInput.WriteLineAsync(GoLine.AsMemory(), ct);
            await child.StandardInput.FlushAsync(ct);
            var clock = Stopwatch.StartNew();
            while (!child.HasExited)
            {
                long grown = ResidentBytes(child) - baseline;
                peak = Math.Max(peak, grown);
                if (grown > budgetBytes || clock.Elapsed > timeout)
                {
                    child.Kill(entireProcessTree: true);
                    await child.WaitForExitAsync(CancellationToken.None);
                    return grown > budgetBytes ? new MemoryProbeResult(false, peak, null)
                        : new MemoryProbeResult(false, peak, null, $"it ran for more than {timeout.TotalSeconds:0} s");
                }
                await Task.Delay(PollInterval, ct);
            }
            await child.WaitForExitAsync(ct);
            string error = (await errors).Trim();
            return child.ExitCode switch
            {
                0 => new MemoryProbeResult(true, peak, null),
                RejectedExitCode => new MemoryProbeResult(true, peak, error),
                // Killed by a signal (the kernel's out-of-memory killer: 137) or a native crash: not safe to run in the agent.
                var code => new MemoryProbeResult(false, peak, null, $"exit code {code}" + (error.Length > 0 ? $": {error}" : "")),
            };
        }
        finally
        {
            if (!child.HasExited)
            {
                try { child.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            }
        }
    }

    Process Start(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new InvalidOperationException($"the memory probe could not start {FileName}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"the memory probe could not start this program again ({FileName}: {e.Message}); " +
                                                "start the agent with --no-memory-probe to measure without it", e);
        }
    }

    const string ReadyLine = "memory-probe ready", GoLine = "go";

    /// <summary>The child's exit code when ONNX Runtime refused the model (its message on standard error).</summary>
    const int RejectedExitCode = 3;

    /// <summary>The child's side: reads the request, says it is ready, waits for the go, loads the model and runs it once
    /// with <see cref="HostDevice"/>, as the measurement will. Returns the exit code (0, or 3 with ONNX Runtime's error on
    /// standard error).</summary>
    public static async Task<int> RunChildAsync(string requestPath, TextReader input, TextWriter output, TextWriter error)
    {
        var request = JsonSerializer.Deserialize<ProbeRequest>(await File.ReadAllTextAsync(requestPath), AgentJson.Options)
                      ?? throw new InvalidDataException($"{requestPath}: not a memory probe request");
        _ = Microsoft.ML.OnnxRuntime.OrtEnv.Instance(); // the runtime loaded before the baseline is read
        output.WriteLine(ReadyLine);
        output.Flush();
        if (await input.ReadLineAsync() != GoLine) return 4;
        byte[] model = await File.ReadAllBytesAsync(request.ModelPath);
        try
        {
            await new HostDevice(name: "memory probe").MeasureAsync(model, request.InputShape, request.Plan with
            {
                WarmupRuns = 0, MinimumRuns = 1, TimeBudget = TimeSpan.Zero,
            });
            return 0;
        }
        catch (ArgumentException e)
        {
            error.WriteLine(e.Message);
            return RejectedExitCode;
        }
    }

    static long ResidentBytes(Process process)
    {
        try
        {
            process.Refresh();
            return process.WorkingSet64;
        }
        catch (InvalidOperationException)
        {
            return 0; // exited between the check and the read
        }
    }

    sealed record ProbeRequest(string ModelPath, int[] InputShape, MeasurementPlan Plan);
}

/// <param name="Completed">False when the child was killed for growing past the budget, or ended otherwise than by
/// finishing or by ONNX Runtime refusing the model (<paramref name="Crashed"/> says how).</param>
/// <param name="PeakBytes">The most the child grew by over its baseline, as sampled.</param>
/// <param name="Error">ONNX Runtime's message when it refused the model; the measurement then reports it itself.</param>
/// <param name="Crashed">How the child ended when it neither finished nor was stopped for memory: a signal, a native crash, the time limit.</param>
public sealed record MemoryProbeResult(bool Completed, long PeakBytes, string? Error, string? Crashed = null);
