using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>One kernel mode checked on this machine: how far it strays from the reference, and how fast it trains.</summary>
/// <param name="MaxRelativeError">Largest |mode − reference| / max |reference| over outputs, input and parameter gradients.</param>
/// <param name="ImagesPerSecond">Steady training speed (median steps).</param>
/// <param name="UnalignedImagesPerSecond">Speed on a network whose channel counts are not multiples of oneDNN's block
/// (pruned candidates mostly are not).</param>
/// <param name="Problem">Why the mode could not be checked (its check process failed); null when it was.</param>
public sealed record KernelCheck(KernelMode Mode, double MaxRelativeError, double ImagesPerSecond, bool Correct, double UnalignedImagesPerSecond = 0,
                                 string? Problem = null);

/// <summary>Which kernels training uses here, and the evidence: recorded in trained models' provenance.</summary>
/// <param name="Key">What the decision holds for: CPU model, flags, libtorch and the convolution shapes checked.</param>
/// <param name="ChannelsLastBlock">With <see cref="KernelMode.ChannelsLast"/>: models run channels-last only when every
/// convolution's output channels are a multiple of this (oneDNN's channel block), NCHW oneDNN otherwise; 0 when
/// channels-last won on unaligned channel counts too, or NCHW oneDNN failed the check.</param>
/// <param name="CheckSeconds">How long the check took when it ran.</param>
public sealed record KernelDecision(KernelMode Mode, string Reason, string Key, IReadOnlyList<KernelCheck> Checks, bool FromCache,
                                    int ChannelsLastBlock = 0, double CheckSeconds = 0)
{
    /// <summary>Parts of a reason joined with "; ", the empty ones (and stray separators) left out.</summary>
    internal static string Join(params string[] parts) =>
        string.Join("; ", parts.Select(p => p.Trim().Trim(';').Trim()).Where(p => p.Length > 0));

    public override string ToString()
    {
        string checks = string.Join(", ", Checks.Select(c => $"{c.Mode.Name()}: error {c.MaxRelativeError:0.0e+0}, {c.ImagesPerSecond:0} img/s ({c.UnalignedImagesPerSecond:0} unaligned)"));
        string evidence = Join(Reason, checks, Checks.Count > 0 ? $"checked in {CheckSeconds:0.0} s" + (FromCache ? ", cached" : "") : "");
        return $"oneDNN {Mode.Name()}{(Mode == KernelMode.ChannelsLast && ChannelsLastBlock > 0 ? $" where every layer's channels are multiples of {ChannelsLastBlock}, native elsewhere" : "")}" +
               (evidence.Length > 0 ? $" ({evidence})" : "");
    }
}

/// <summary>
/// Chooses libtorch's convolution kernels per machine. oneDNN's kernels are several times faster than ATen's own, but
/// on some CPUs they return wrong results for some shapes (see <see cref="TorchRuntime"/>), so neither "always on" nor
/// "always off" is right. Before training, forward and backward passes run with oneDNN off (ATen, the reference), on,
/// and on with channels-last tensors (another set of oneDNN kernels, to be checked on its own), on the same weights and
/// batch: the builders' networks whole and every convolution of the model at hand alone; a oneDNN mode is used only when
/// every output and gradient agrees within <see cref="Tolerance"/>, and the fastest such mode, timed on training steps
/// of those networks and the model, wins if it beats the reference. The decision is cached per CPU
/// model, CPU flags, libtorch, the modes compared and the convolution shapes, so it costs seconds once per machine and
/// model family. Where no uncapped oneDNN mode is correct, oneDNN capped at narrower instruction sets (AVX2, SSE4.1:
/// other kernels) is checked the same way, each in a process of its own (<see cref="CheckHost"/>), because oneDNN fixes
/// its instruction set when its first kernel runs.
/// </summary>
public static class KernelSelection
{
    /// <summary>Relative to the largest reference value: float32 reorderings stay near 1e-6; the wrong kernels seen were off by O(1).</summary>
    public const double Tolerance = 1e-3;

    /// <summary>The fastest correct mode; "off" (the reference, correct by definition) when no other is both correct and faster.</summary>
    public static KernelMode Choose(IReadOnlyList<KernelCheck> checks)
    {
        var reference = checks.FirstOrDefault(c => c.Mode == KernelMode.Off);
        return checks.Where(c => c.Correct && (reference is null || c.ImagesPerSecond > reference.ImagesPerSecond))
                     .OrderByDescending(c => c.ImagesPerSecond).FirstOrDefault()?.Mode ?? KernelMode.Off;
    }

    /// <summary>The cache key: equal exactly when the CPU, its flags, libtorch and the checked shapes are.</summary>
    public static string Key(string cpu, string flags, string libtorch, string shapes) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", cpu, flags, libtorch, shapes))))[..32];

    /// <summary>The convolution shapes of a model (input shape, then every Conv's output shape, MACs and weights).</summary>
    public static string Shapes(ModelProto model)
    {
        var cost = ModelCost.Analyze(model);
        return string.Join("x", cost.InputShape.Skip(1)) + ";" +
               string.Join(";", cost.Nodes.Where(n => n.OpType == "Conv").Select(n => $"{string.Join("x", n.OutputShape.Skip(1))}:{n.Macs}:{n.Params}"));
    }

    /// <summary>The networks every check covers besides the model at hand: the builders' shapes at 28×28.</summary>
    public static IReadOnlyList<ModelProto> BuilderModels { get; } =
        [Architectures.SimpleCnn(1, 28, 10, seed: 1), Architectures.CifarResNet(20, 1, 28, 10, seed: 1)];

    const int TimedBatch = 64, TimedRounds = 5;

    /// <summary>Changes whenever the check measures something new, so that no decision made without that evidence is reused.</summary>
    const string CheckVersion = "3 (unaligned channels)";

    /// <summary>The modes every check compares: the reference first.</summary>
    static readonly (KernelMode Mode, bool Mkldnn, bool ChannelsLast)[] Candidates =
        [(KernelMode.Off, false, false), (KernelMode.Native, true, false), (KernelMode.ChannelsLast, true, true)];

    /// <summary>
    /// Compares every mode with the reference (oneDNN off) on <paramref name="compared"/>, on the same weights and batch
    /// (outputs, input and parameter gradients), and times a few training steps of each mode on <paramref name="timed"/>.
    /// Switches libtorch's process-wide flag while it runs (restored after): run it before any other TorchSharp work, as
    /// <see cref="TorchRuntime.UseKernelsFor"/> does.
    /// </summary>
    public static IReadOnlyList<KernelCheck> Check(IReadOnlyList<ModelProto> compared, IReadOnlyList<ModelProto> timed, int threads) =>
        Check(compared, timed, threads, Candidates);

    /// <summary>
    /// The check of one capped mode against the reference, in a process started with ONEDNN_MAX_CPU_ISA set to its cap
    /// (<see cref="KernelModes.Cap"/>) in which no oneDNN kernel has run yet: what <see cref="CheckHost"/> runs.
    /// </summary>
    public static IReadOnlyList<KernelCheck> CheckCapped(KernelMode mode, IReadOnlyList<ModelProto> compared, IReadOnlyList<ModelProto> timed, int threads)
    {
        if (mode.Cap() is not { } isa)
            throw new ArgumentException($"{mode.Name()} is not a capped kernel mode; use one of {string.Join(", ", KernelModes.All.Where(m => m.Cap() is not null).Select(KernelModes.Name))}");
        if (!string.Equals(Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA"), isa, StringComparison.OrdinalIgnoreCase))
            throw new InvalidOperationException($"checking {mode.Name()} needs a process started with ONEDNN_MAX_CPU_ISA={isa}");
        return Check(compared, timed, threads, [Candidates[0], (mode, true, false)]);
    }

    static IReadOnlyList<KernelCheck> Check(IReadOnlyList<ModelProto> compared, IReadOnlyList<ModelProto> timed, int threads,
                                            (KernelMode Mode, bool Mkldnn, bool ChannelsLast)[] candidates)
    {
        TorchRuntime.EnsureInitialized();
        set_num_threads(threads);
        bool was = TorchRuntime.MkldnnEnabled;
        try
        {
            var error = candidates.ToDictionary(c => c.Mode, _ => 0.0);
            foreach (var model in compared)
            {
                manual_seed(1);
                using var input = rand([8, .. InputShape(model)]);
                List<float[]>? reference = null;
                foreach (var (mode, mkldnn, channelsLast) in candidates)
                {
                    using var module = new OnnxModule(model, channelsLast) { Kernels = Forced(mkldnn, channelsLast) }; // the same weights in every mode
                    module.train();
                    TorchRuntime.MkldnnEnabled = mkldnn;
                    var values = Pass(module, input);
                    reference ??= values;
                    error[mode] = Math.Max(error[mode], RelativeError(reference, values));
                }
            }
            var seconds = candidates.ToDictionary(c => c.Mode, _ => 0.0);
            long images = 0;
            foreach (var model in timed)
            {
                foreach (var (mode, step) in TimeModes(model, TimedBatch, candidates)) seconds[mode] += step;
                images += TimedBatch;
            }
            var unaligned = TimeModes(UnalignedModel, TimedBatch, candidates);
            return candidates.Select(c => new KernelCheck(c.Mode, error[c.Mode], images / seconds[c.Mode], error[c.Mode] <= Tolerance, TimedBatch / unaligned[c.Mode])).ToList();
        }
        finally
        {
            TorchRuntime.MkldnnEnabled = was;
        }
    }

    /// <summary>A steady training step of <paramref name="model"/> in each mode: rounds that interleave the modes (one step
    /// each) after two warm-up rounds, the median per mode, so that a neighbour's burst on the machine does not decide.</summary>
    static Dictionary<KernelMode, double> TimeModes(ModelProto model, int batchSize, (KernelMode Mode, bool Mkldnn, bool ChannelsLast)[] candidates)
    {
        manual_seed(1);
        using var batch = rand([batchSize, .. InputShape(model)]);
        var modules = candidates.Select(c => new OnnxModule(model, c.ChannelsLast) { Kernels = Forced(c.Mkldnn, c.ChannelsLast) }).ToArray();
        try
        {
            var steps = candidates.Select(_ => new List<double>()).ToArray();
            for (int round = -2; round < TimedRounds; round++)
                for (int m = 0; m < candidates.Length; m++)
                {
                    TorchRuntime.MkldnnEnabled = candidates[m].Mkldnn;
                    modules[m].train();
                    var watch = Stopwatch.StartNew();
                    Step(modules[m], batch);
                    if (round >= 0) steps[m].Add(watch.Elapsed.TotalSeconds);
                }
            return Enumerable.Range(0, candidates.Length).ToDictionary(m => candidates[m].Mode, m => steps[m].Order().ElementAt(TimedRounds / 2));
        }
        finally
        {
            foreach (var module in modules) module.Dispose();
        }
    }

    /// <summary>Every convolution on the mode's kernels, unchecked: this check compares the modes themselves.</summary>
    static ConvKernelPlan Forced(bool mkldnn, bool channelsLast) =>
        new() { Forced = !mkldnn ? ConvKernel.Aten : channelsLast ? ConvKernel.OneDnnChannelsLast : ConvKernel.OneDnnNchw };

    /// <summary>SimpleCnn with channel counts no block divides (what pruned candidates have): oneDNN's channels-last
    /// kernels can be slower there than on NCHW even where they win on aligned counts.</summary>
    static readonly ModelProto UnalignedModel = Architectures.SimpleCnn(1, 28, 10, [23, 23, 45, 45], seed: 1);

    /// <summary>oneDNN blocks channels by the vector width: 16 floats with AVX-512, 8 with AVX2 or NEON.</summary>
    static int ChannelBlock() => CpuFlags().Split(' ').Contains("avx512f") ? 16 : 8;

    static long[] InputShape(ModelProto model) => ModelCost.Analyze(model).InputShape.Skip(1).Select(d => (long)d).ToArray();

    /// <summary>
    /// Each distinct convolution of <paramref name="model"/> (input and weight shapes, attributes) as a one-node model
    /// with random weights. A whole network is a poor judge of kernels: where BatchNorm normalises a few pixels in
    /// training mode, or ReLU6 clips many values at its bounds, two correct summation orders already give gradients
    /// that differ by O(1) relative to their size (MobileNetV2 at 28×28: ATen against itself in another layout). One
    /// convolution is well conditioned, so any difference beyond rounding is the kernel's.
    /// </summary>
    public static IReadOnlyList<ModelProto> Convolutions(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        var shapes = ShapeInference.Infer(graph);
        var random = new Random(1);
        var result = new List<ModelProto>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Conv"))
        {
            long[] input = shapes[node.Input[0]].Shape, weight = shapes[node.Input[1]].Shape, output = shapes[node.Output[0]].Shape;
            bool bias = node.Input.Count > 2 && node.Input[2].Length > 0;
            var conv = node.Clone();
            conv.Name = "conv";
            conv.Input.Clear();
            conv.Input.Add(["x", "w", .. bias ? new[] { "b" } : []]);
            conv.Output.Clear();
            conv.Output.Add("y");
            if (!seen.Add($"{string.Join("x", input.Skip(1))}|{string.Join("x", weight)}|{bias}|{conv.Attribute}")) continue;
            var builder = new OnnxModelBuilder("convolution", graph.OpsetVersion);
            builder.Input("x", [-1, .. input.Skip(1)]);
            builder.Initializer("w", weight, Normal(random, weight.Aggregate(1L, (a, b) => a * b), 1 / Math.Sqrt(weight.Skip(1).Aggregate(1L, (a, b) => a * b))));
            if (bias) builder.Initializer("b", [weight[0]], Normal(random, weight[0], 0.1));
            builder.Output("y", [-1, .. output.Skip(1)]);
            var single = builder.Build();
            single.Graph.Node.Add(conv);
            result.Add(single);
        }
        return result;
    }

    static float[] Normal(Random random, long count, double scale)
    {
        var values = new float[count];
        for (long i = 0; i < count; i++) values[i] = (float)(scale * random.NextGaussian());
        return values;
    }

    /// <summary>The decision for training <paramref name="model"/> here: from the cache, or checked now and cached.</summary>
    /// <param name="cachePath">The JSON cache (default: <c>$XDG_CACHE_HOME/paretoprune/kernels.json</c> or <c>~/.cache/…</c>).</param>
    public static KernelDecision Decide(ModelProto? model, int threads, string? cachePath = null) =>
        Decide(model is null ? [] : [model], threads, cachePath);

    /// <summary>Correctness: the builders' networks whole (well conditioned at 28×28) and every convolution of the models at
    /// hand alone (<see cref="Convolutions"/>); speed: training steps of the builders' networks and the models at hand.
    /// Capped modes are checked where no uncapped oneDNN mode is correct, or always with <paramref name="checkCaps"/>.</summary>
    internal static KernelDecision Decide(IReadOnlyList<ModelProto> models, int threads, string? cachePath, bool checkCaps = false)
    {
        var timed = BuilderModels.Concat(models).ToList();
        var caps = CappedModes();
        bool hosted = CheckHost is not null; // a decision made without capped checks is not one made with them
        string key = Key(CpuModel(), CpuFlags(),
                         $"{LibTorch()}/check {CheckVersion}: {string.Join(",", Candidates.Select(c => c.Mode).Concat(hosted ? caps : []).Select(KernelModes.Name))}" +
                         $"/ONEDNN_MAX_CPU_ISA={Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA")}{(checkCaps ? "/all" : "")}",
                         string.Join("|", timed.Select(Shapes)));
        cachePath ??= DefaultCachePath();
        var cache = ReadCache(cachePath);
        if (cache.TryGetValue(key, out var cached)) return cached with { FromCache = true };
        var watch = Stopwatch.StartNew();
        IReadOnlyList<ModelProto> compared = [.. BuilderModels, .. models.SelectMany(Convolutions)];
        var checks = Check(compared, timed, threads).ToList();
        string notChecked = "";
        if (checkCaps || !checks.Any(c => c.Mode != KernelMode.Off && c.Correct))
        {
            if (hosted) foreach (var cap in caps) checks.Add(CheckInHost(cap, compared, timed, threads, checks[0]));
            else if (caps.Count > 0)
                notChecked = $"; {string.Join(" and ", caps.Select(KernelModes.Name))} not checked: no check host in this process ({nameof(KernelSelection)}.{nameof(CheckHost)})";
        }
        var mode = Choose(checks);
        var decision = new KernelDecision(mode, Reason(mode, checks) + notChecked, key, checks, FromCache: false,
                                          ChannelsLastBlock(checks, ChannelBlock()), watch.Elapsed.TotalSeconds);
        cache[key] = decision;
        if (KernelFault.Injected is null) WriteCache(cachePath, cache); // a decision reached under an injected fault is not this machine's
        return decision;
    }

    /// <summary>
    /// The command line of a process that checks one capped mode (<see cref="CheckCapped"/>), given
    /// <c>--mode M --threads N --models DIR --result FILE</c>: the <c>paretoprune</c> CLI sets itself
    /// (<c>paretoprune kernel-check</c>). Null in other processes, where capped modes go unchecked and the decision says so.
    /// </summary>
    public static IReadOnlyList<string>? CheckHost { get; set; }

    /// <summary>The capped modes that differ from this CPU's widest kernels, widest first (x64 only: the caps are x86 ISAs).</summary>
    internal static IReadOnlyList<KernelMode> CappedModes()
    {
        if (System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture != System.Runtime.InteropServices.Architecture.X64) return [];
        var flags = CpuFlags().Split(' ');
        return flags.Contains("avx512f") ? [KernelMode.Avx2, KernelMode.Sse41] : flags.Contains("avx2") ? [KernelMode.Sse41] : [];
    }

    /// <summary>How long a capped mode's check process may take before it counts as failed.</summary>
    static readonly TimeSpan HostTimeout = TimeSpan.FromMinutes(10);

    /// <summary>Checks <paramref name="mode"/> in a fresh process (<see cref="CheckHost"/>) with oneDNN capped; its speed is
    /// put on this process's scale through the reference both processes timed.</summary>
    static KernelCheck CheckInHost(KernelMode mode, IReadOnlyList<ModelProto> compared, IReadOnlyList<ModelProto> timed, int threads, KernelCheck reference)
    {
        var directory = Directory.CreateTempSubdirectory("paretoprune-kernels-");
        try
        {
            for (int i = 0; i < compared.Count; i++) File.WriteAllBytes(Path.Combine(directory.FullName, $"compared-{i:000}.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(compared[i]));
            for (int i = 0; i < timed.Count; i++) File.WriteAllBytes(Path.Combine(directory.FullName, $"timed-{i:000}.onnx"), Google.Protobuf.MessageExtensions.ToByteArray(timed[i]));
            string result = Path.Combine(directory.FullName, "result.json");
            var start = new ProcessStartInfo(CheckHost![0]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string argument in CheckHost.Skip(1).Concat(["--mode", mode.Name(), "--threads", threads.ToString(), "--models", directory.FullName, "--result", result]))
                start.ArgumentList.Add(argument);
            start.Environment["ONEDNN_MAX_CPU_ISA"] = mode.Cap();
            start.Environment.Remove("PARETOPRUNE_ONEDNN");
            using var process = Process.Start(start)!;
            var output = process.StandardOutput.ReadToEndAsync();
            var error = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(HostTimeout))
            {
                process.Kill(entireProcessTree: true);
                return Failed(mode, $"its check took over {HostTimeout.TotalMinutes:0} min");
            }
            if (process.ExitCode != 0 || !File.Exists(result))
                return Failed(mode, $"its check process exited with {process.ExitCode}: {LastLine(error.Result + output.Result)}");
            var checks = ReadChecks(File.ReadAllText(result));
            var off = checks.Single(c => c.Mode == KernelMode.Off);
            var capped = checks.Single(c => c.Mode == mode);
            return capped with
            {
                ImagesPerSecond = capped.ImagesPerSecond * reference.ImagesPerSecond / off.ImagesPerSecond,
                UnalignedImagesPerSecond = capped.UnalignedImagesPerSecond * reference.UnalignedImagesPerSecond / off.UnalignedImagesPerSecond,
            };
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or JsonException or InvalidOperationException)
        {
            return Failed(mode, $"its check process could not run: {e.Message}");
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    static KernelCheck Failed(KernelMode mode, string problem) => new(mode, double.PositiveInfinity, 0, false, Problem: problem);

    static string LastLine(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "no output";

    /// <summary>The checks as <see cref="CheckHost"/> writes them.</summary>
    public static string WriteChecks(IReadOnlyList<KernelCheck> checks) => JsonSerializer.Serialize(checks, CheckJson);

    static List<KernelCheck> ReadChecks(string json) => JsonSerializer.Deserialize<List<KernelCheck>>(json, CheckJson) ?? [];

    /// <summary>An infinite error (a non-finite result) must survive the trip.</summary>
    static readonly JsonSerializerOptions CheckJson = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    static readonly JsonSerializerOptions CacheJson = new(CheckJson) { WriteIndented = true };

    /// <summary>0 when channels-last also wins on unaligned channel counts (or NCHW oneDNN is wrong, so there is no
    /// alternative); else the block that a model's channel counts must be multiples of for channels-last.</summary>
    internal static int ChannelsLastBlock(IReadOnlyList<KernelCheck> checks, int block)
    {
        var native = checks.FirstOrDefault(c => c.Mode == KernelMode.Native);
        var last = checks.FirstOrDefault(c => c.Mode == KernelMode.ChannelsLast);
        if (native is not { Correct: true } || last is null) return 0;
        return last.UnalignedImagesPerSecond > native.UnalignedImagesPerSecond ? 0 : block;
    }

    static string Reason(KernelMode mode, IReadOnlyList<KernelCheck> checks)
    {
        var wrong = checks.Where(c => !c.Correct).ToList();
        string differ = wrong.Count == 0 ? ""
            : "; " + string.Join(", ", wrong.Select(c => c.Problem is { } problem ? $"{c.Mode.Name()} unchecked ({problem})" : $"{c.Mode.Name()} differs from ATen by {c.MaxRelativeError:0.0e+0}"))
              + $" (tolerance {Tolerance:0e+0})";
        return mode != KernelMode.Off ? $"{mode.Name()} agrees with ATen and trains fastest{differ}"
            : wrong.Count == checks.Count - 1 ? differ[2..] : $"oneDNN agrees with ATen but is not faster{differ}";
    }

    static List<float[]> Pass(OnnxModule module, Tensor input)
    {
        using var scope = NewDisposeScope();
        module.zero_grad();
        var x = input.detach().clone().requires_grad_(true);
        var output = module.forward(x);
        manual_seed(2);
        (output * rand(output.shape)).sum().backward(); // rand(shape), not rand_like: that fills a channels-last output in memory order
        // contiguous(): values in logical (NCHW) order whatever the mode's layout.
        var values = new List<float[]> { output.detach().contiguous().data<float>().ToArray(), x.grad!.contiguous().data<float>().ToArray() };
        values.AddRange(module.parameters().Where(p => p.grad is not null).Select(p => p.grad!.contiguous().data<float>().ToArray()));
        return values;
    }

    static void Step(OnnxModule module, Tensor batch)
    {
        using var scope = NewDisposeScope();
        module.zero_grad();
        module.forward(batch).square().mean().backward();
    }

    internal static double RelativeError(List<float[]> reference, List<float[]> other)
    {
        if (reference.Count != other.Count) return double.PositiveInfinity;
        double worst = 0;
        for (int t = 0; t < reference.Count; t++)
        {
            double scale = reference[t].Length == 0 ? 1 : reference[t].Max(v => Math.Abs((double)v));
            double diff = 0;
            for (int i = 0; i < reference[t].Length; i++)
                diff = Math.Max(diff, double.IsFinite(other[t][i]) ? Math.Abs((double)reference[t][i] - other[t][i]) : double.PositiveInfinity);
            worst = Math.Max(worst, diff / Math.Max(scale, 1e-12));
        }
        return worst;
    }

    static string CpuInfo(string field)
    {
        if (!File.Exists("/proc/cpuinfo")) return Environment.GetEnvironmentVariable("PROCESSOR_IDENTIFIER") ?? "unknown";
        string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(field, StringComparison.Ordinal));
        return line is null ? "" : line[(line.IndexOf(':') + 1)..].Trim();
    }

    /// <summary>Model name with family, model and stepping (the name alone is "AMD EPYC" on some VMs) and microcode.</summary>
    static string CpuModel() => string.Join("/", CpuInfo("model name"), CpuInfo("cpu family"), CpuInfo("model\t"), CpuInfo("stepping"), CpuInfo("microcode"));

    static string CpuFlags() => CpuInfo("flags");

    static string LibTorch() => typeof(TorchSharp.torch).Assembly.GetName().Version + "/" + Environment.ProcessorCount + " cores";

    /// <summary>What per-signature verdicts hold for (<see cref="ConvKernels"/>): this CPU, its flags, libtorch and the
    /// instruction-set cap oneDNN runs under in this process.</summary>
    internal static string MachineKey()
    {
        string cap = TorchRuntime.OneDnnMode.Cap() is { } isa ? isa : Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") ?? "";
        return Key(CpuModel(), CpuFlags(), $"{LibTorch()}/ONEDNN_MAX_CPU_ISA={cap}", "convolution check 1");
    }

    internal static string DefaultCachePath()
    {
        string root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "paretoprune", "kernels.json");
    }

    static Dictionary<string, KernelDecision> ReadCache(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, KernelDecision>>(File.ReadAllText(path), CheckJson) ?? [] : [];
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return []; // an unreadable cache is checked again, never trusted
        }
    }

    static void WriteCache(string path, Dictionary<string, KernelDecision> cache)
    {
        try
        {
            Reporting.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(cache, CacheJson));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only home costs a check per process, nothing else.
        }
    }
}
