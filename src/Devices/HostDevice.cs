using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Microsoft.ML.OnnxRuntime;
using ParetoPrune.Devices.Energy;

namespace ParetoPrune.Devices;

/// <summary>
/// Measures models with ONNX Runtime on this machine (a workstation, or a Raspberry Pi running the agent): latency
/// with a high-resolution clock around each run, energy with the optional <see cref="IEnergyMeter"/>.
/// The device owns no meter: the caller disposes it.
/// </summary>
public sealed class HostDevice : IDevice
{
    // Fixed so that two measurements of a model see the same input (data-dependent kernels, denormals).
    const int InputSeed = 20240611;

    readonly IEnergyMeter? meter;

    /// <param name="meter">Energy meter for the device's power; null measures latency only.</param>
    /// <param name="name">How reports name the device; the machine's host name by default.</param>
    public HostDevice(IEnergyMeter? meter = null, string? name = null)
    {
        this.meter = meter;
        Name = string.IsNullOrWhiteSpace(name) ? Environment.MachineName : name.Trim();
    }

    public string Name { get; }

    public Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(onnxModel);
        ArgumentNullException.ThrowIfNull(inputShape);
        ArgumentNullException.ThrowIfNull(plan);
        plan.Validate();
        if (inputShape.Any(d => d < 1))
            throw new ArgumentException($"every dimension of the input shape must be at least 1 (got [{string.Join(", ", inputShape)}])", nameof(inputShape));
        if (OnnxExternalData.FirstExternalTensor(onnxModel) is { } external)
            throw new ArgumentException($"the model stores tensor '{external}' as external data (a separate file); measured from bytes it has no folder " +
                                        "to load it from: save the model with its data inside (onnx.save(model, path, save_as_external_data=False))",
                                        nameof(onnxModel));
        // Its own thread: the runs are long, CPU-bound and blocking, and must not queue behind thread-pool work.
        return Task.Factory.StartNew(() => Measure(onnxModel, inputShape, plan, ct), ct,
            TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    Measurement Measure(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct)
    {
        string runtime = $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}";
        using var options = new SessionOptions { GraphOptimizationLevel = plan.GraphOptimization };
        if (plan.Threads is { } threads) options.IntraOpNumThreads = threads;
        InferenceSession session;
        try
        {
            session = new InferenceSession(onnxModel, options);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ArgumentException($"{runtime} rejected the model ({DescribeModel(onnxModel)}): {e.Message}", nameof(onnxModel), e);
        }
        using var _ = session;

        long[] shape = [plan.BatchSize, .. inputShape.Select(d => (long)d)];
        string inputName = CheckInput(session, shape);
        var random = new Random(InputSeed);
        var data = new float[checked((int)shape.Aggregate(1L, (a, d) => checked(a * d)))];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(random.NextDouble() * 2 - 1);
        using var input = OrtValue.CreateTensorValueFromMemory(data, shape);
        using var runOptions = new RunOptions();
        // A long run (a large model on a Pi) stops between nodes when the caller cancels, not only between runs.
        using var terminate = ct.Register(() => runOptions.Terminate = true);
        string[] inputNames = [inputName];
        OrtValue[] inputs = [input];
        string[] outputNames = [.. session.OutputNames];

        void Run()
        {
            try
            {
                using var outputs = session.Run(runOptions, inputNames, inputs, outputNames);
            }
            catch (OnnxRuntimeException) when (ct.IsCancellationRequested)
            {
                throw new OperationCanceledException(ct); // the terminate flag, not the model
            }
            catch (OnnxRuntimeException e)
            {
                throw new ArgumentException($"{runtime} could not run the model ({DescribeModel(onnxModel)}) on an input of shape " +
                                            $"[{string.Join(", ", shape)}]: {e.Message}", nameof(onnxModel), e);
            }
        }

        for (int i = 0; i < plan.WarmupRuns; i++)
        {
            ct.ThrowIfCancellationRequested();
            Run();
        }

        var durations = new List<double>();
        var budget = Stopwatch.StartNew();
        int nextCheck = plan.MinimumRuns;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            long start = Stopwatch.GetTimestamp();
            Run();
            // Raw ticks: a TimeSpan would round to 100 ns, coarse for the microsecond runs of small models.
            durations.Add((Stopwatch.GetTimestamp() - start) * 1000.0 / Stopwatch.Frequency);
            if (durations.Count < plan.MinimumRuns) continue;
            if (budget.Elapsed >= plan.TimeBudget) break;
            if (durations.Count >= nextCheck)
            {
                if (LatencyStatistics.Summarize(durations).RelativeCiWidth <= plan.TargetRelativeCiWidth) break;
                // Summarising sorts every duration: check at geometrically spaced counts, not after every run.
                nextCheck = durations.Count + Math.Max(1, durations.Count / 10);
            }
        }
        var latency = LatencyStatistics.Summarize(durations);
        // From the median run, as the latency is: a preempted run must not move the throughput the table shows beside it.
        double inferencesPerSecond = plan.BatchSize / (latency.MedianMs / 1000);

        EnergyFigures? energy = null;
        string? reason = null;
        if (meter is null)
            reason = "no energy meter on this device (latency only)";
        else
        {
            try
            {
                energy = MeasureEnergy(meter, Run, plan, ct);
            }
            catch (EnergyUnavailableException e)
            {
                reason = $"{meter.Name}: {e.Message}";
            }
            catch (Exception e) when (e is not OperationCanceledException and not ArgumentException)
            {
                reason = $"energy meter {meter.Name} failed ({e.GetType().Name}): {e.Message}";
            }
        }

        var provenance = DeviceProvenance.Measured(Name, DescribePlatform(), runtime, plan.Threads,
            DescribeOptimization(plan.GraphOptimization), meter?.Name);
        return new Measurement(latency, inferencesPerSecond, energy, reason, provenance);
    }

    static EnergyFigures MeasureEnergy(IEnergyMeter meter, Action run, MeasurementPlan plan, CancellationToken ct)
    {
        EnergyReading? idleBefore = plan.MeasureIdle ? Window(meter, () => Idle(plan.IdleDuration, ct), "idle before") : null;
        // A sampling meter's interval, learnt from the idle window; a counter (0 samples) has none.
        TimeSpan? interval = idleBefore is { Samples: > 0 } idle ? idle.Duration / idle.Samples : null;
        TimeSpan length = plan.EnergyWindow(interval);
        long runs = 0;
        var active = Window(meter, () =>
        {
            var clock = Stopwatch.StartNew();
            do
            {
                ct.ThrowIfCancellationRequested();
                run();
                runs++;
            } while (clock.Elapsed < length);
        }, "inference");
        EnergyReading? idleAfter = plan.MeasureIdle ? Window(meter, () => Idle(plan.IdleDuration, ct), "idle after") : null;
        if (active.Joules <= 0)
            throw new EnergyUnavailableException($"the meter read {active.Joules} J over {active.Duration.TotalSeconds:0.###} s of inferences; a running device uses energy");

        long inferences = runs * plan.BatchSize;
        double? idleWatts = idleBefore is not null && idleAfter is not null
            ? (idleBefore.Joules + idleAfter.Joules) / (idleBefore.Duration + idleAfter.Duration).TotalSeconds
            : null;
        double? dynamic = idleWatts is { } p ? (active.Joules - p * active.Duration.TotalSeconds) / inferences : null;
        return new EnergyFigures(active.Joules / inferences, dynamic, active.AverageWatts, idleWatts,
            active.Samples, active.Duration, inferences);
    }

    static void Idle(TimeSpan duration, CancellationToken ct)
    {
        ct.WaitHandle.WaitOne(duration);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>Runs <paramref name="work"/> inside a meter window; the window is closed even when the work fails.</summary>
    static EnergyReading Window(IEnergyMeter meter, Action work, string what)
    {
        var window = meter.Start();
        try
        {
            work();
        }
        catch
        {
            try { window.Stop(); } catch (Exception) { /* the work's exception is the one to report */ }
            throw;
        }
        var reading = window.Stop();
        if (!double.IsFinite(reading.Joules) || reading.Joules < 0 || reading.Duration <= TimeSpan.Zero)
            throw new EnergyUnavailableException($"the {what} window read an impossible {reading.Joules} J over {reading.Duration}");
        return reading;
    }

    static string CheckInput(InferenceSession session, long[] shape)
    {
        if (session.InputMetadata.Count != 1)
            throw new ArgumentException($"the model has {session.InputMetadata.Count} inputs ({string.Join(", ", session.InputMetadata.Keys)}); " +
                                        "only single-input models can be measured", "onnxModel");
        var (name, meta) = session.InputMetadata.First();
        if (!meta.IsTensor || meta.ElementType != typeof(float))
            throw new ArgumentException($"the model's input '{name}' is {meta.ElementDataType}, not a float tensor", "onnxModel");
        int[] dims = meta.Dimensions;
        string expected = $"[{string.Join(", ", dims.Select(d => d < 0 ? "?" : d.ToString()))}]";
        if (dims.Length != shape.Length)
            throw new ArgumentException($"the model's input '{name}' has shape {expected}; give one sample's shape without the batch dimension " +
                                        $"({dims.Length - 1} numbers), got [{string.Join(", ", shape.Skip(1))}]", "inputShape");
        for (int i = 0; i < dims.Length; i++)
            if (dims[i] >= 0 && dims[i] != shape[i])
                throw new ArgumentException($"the model's input '{name}' has shape {expected}, which does not accept [{string.Join(", ", shape)}] " +
                                            $"(batch size {shape[0]} from the plan)", "inputShape");
        return name;
    }

    static string DescribeModel(byte[] model) =>
        $"{model.Length:N0} bytes, SHA-256 {Convert.ToHexStringLower(SHA256.HashData(model))[..12]}";

    static string DescribeOptimization(GraphOptimizationLevel level) => level switch
    {
        GraphOptimizationLevel.ORT_DISABLE_ALL => "disabled",
        GraphOptimizationLevel.ORT_ENABLE_BASIC => "basic",
        GraphOptimizationLevel.ORT_ENABLE_EXTENDED => "extended",
        GraphOptimizationLevel.ORT_ENABLE_ALL => "all",
        _ => level.ToString(),
    };

    static string DescribePlatform() =>
        $"{RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant()}"
        + (CpuModel() is { } cpu ? $", {cpu}" : "") + $", {Environment.ProcessorCount} logical cores";

    /// <summary>The CPU from /proc/cpuinfo: x86 kernels say "model name"; a Raspberry Pi's names the board in "Model".</summary>
    static string? CpuModel()
    {
        try
        {
            if (!File.Exists("/proc/cpuinfo")) return null;
            string? board = null;
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                int colon = line.IndexOf(':');
                if (colon < 0) continue;
                string key = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
                if (key == "model name" && value.Length > 0) return value;
                if (key == "Model" && value.Length > 0) board = value;
            }
            return board;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;  // the description then names the architecture only
        }
    }
}
