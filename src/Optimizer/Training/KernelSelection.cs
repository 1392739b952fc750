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
public sealed record KernelCheck(string Mode, double MaxRelativeError, double ImagesPerSecond, bool Correct);

/// <summary>Which kernels training uses here, and the evidence: recorded in trained models' provenance.</summary>
/// <param name="Key">What the decision holds for: CPU model, flags, libtorch and the convolution shapes checked.</param>
public sealed record KernelDecision(string Mode, string Reason, string Key, IReadOnlyList<KernelCheck> Checks, bool FromCache)
{
    public override string ToString() =>
        $"oneDNN {Mode} ({Reason}; " + string.Join(", ", Checks.Select(c => $"{c.Mode}: error {c.MaxRelativeError:0.0e+0}, {c.ImagesPerSecond:0} img/s")) +
        (FromCache ? "; cached" : "") + ")";
}

/// <summary>
/// Chooses libtorch's convolution kernels per machine. oneDNN's kernels are several times faster than ATen's own, but
/// on some CPUs they return wrong results for some shapes (see <see cref="TorchRuntime"/>), so neither "always on" nor
/// "always off" is right. Before training, the networks' own forward and backward passes run with oneDNN on and off
/// (ATen, the reference) on the same weights and batch; oneDNN is used only when every output and gradient agrees
/// within <see cref="Tolerance"/> and it trains faster. The decision is cached per CPU model, CPU flags, libtorch
/// and convolution shapes, so it costs seconds once per machine and model family.
/// </summary>
public static class KernelSelection
{
    /// <summary>Relative to the largest reference value: float32 reorderings stay near 1e-6; the wrong kernels seen were off by O(1).</summary>
    public const double Tolerance = 1e-3;

    /// <summary>The fastest correct mode; "off" (the reference, correct by definition) when no other is both correct and faster.</summary>
    public static string Choose(IReadOnlyList<KernelCheck> checks)
    {
        var reference = checks.FirstOrDefault(c => c.Mode == TorchRuntime.Off);
        return checks.Where(c => c.Correct && (reference is null || c.ImagesPerSecond > reference.ImagesPerSecond))
                     .OrderByDescending(c => c.ImagesPerSecond).FirstOrDefault()?.Mode ?? TorchRuntime.Off;
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

    /// <summary>Runs every model with oneDNN off (the reference) and on, and times a few training steps of each. Switches
    /// libtorch's process-wide flag while it runs (restored after): run it before any other TorchSharp work, as
    /// <see cref="TorchRuntime.UseKernelsFor"/> does.</summary>
    public static IReadOnlyList<KernelCheck> Check(IReadOnlyList<ModelProto> models, int threads)
    {
        TorchRuntime.EnsureInitialized();
        set_num_threads(threads);
        bool was = TorchRuntime.MkldnnEnabled;
        try
        {
            double error = 0;
            var seconds = new Dictionary<string, double> { [TorchRuntime.Off] = 0, [TorchRuntime.Native] = 0 };
            long images = 0;
            foreach (var model in models)
            {
                using var module = new OnnxModule(model);
                module.train();
                var shape = ModelCost.Analyze(model).InputShape.Skip(1).Select(d => (long)d).ToArray();
                manual_seed(1);
                using var input = rand([8, .. shape]);
                var reference = Pass(module, input, mkldnn: false);
                var native = Pass(module, input, mkldnn: true);
                error = Math.Max(error, RelativeError(reference, native));
                using var batch = rand([32, .. shape]);
                foreach (var (mode, mkldnn) in new[] { (TorchRuntime.Off, false), (TorchRuntime.Native, true) })
                {
                    TorchRuntime.MkldnnEnabled = mkldnn;
                    Step(module, batch); // warm-up: kernel creation, allocator
                    var watch = Stopwatch.StartNew();
                    for (int i = 0; i < 3; i++) Step(module, batch);
                    seconds[mode] += watch.Elapsed.TotalSeconds;
                }
                images += 3 * 32;
            }
            return [new KernelCheck(TorchRuntime.Off, 0, images / seconds[TorchRuntime.Off], true),
                    new KernelCheck(TorchRuntime.Native, error, images / seconds[TorchRuntime.Native], error <= Tolerance)];
        }
        finally
        {
            TorchRuntime.MkldnnEnabled = was;
        }
    }

    /// <summary>The decision for training <paramref name="model"/> here: from the cache, or checked now and cached.</summary>
    /// <param name="cachePath">The JSON cache (default: <c>$XDG_CACHE_HOME/paretoprune/kernels.json</c> or <c>~/.cache/…</c>).</param>
    public static KernelDecision Decide(ModelProto? model, int threads, string? cachePath = null) =>
        Decide(model is null ? BuilderModels : [.. BuilderModels, model], threads, cachePath);

    internal static KernelDecision Decide(IReadOnlyList<ModelProto> models, int threads, string? cachePath)
    {
        string key = Key(CpuModel(), CpuFlags(), LibTorch(), string.Join("|", models.Select(Shapes)));
        cachePath ??= DefaultCachePath();
        var cache = ReadCache(cachePath);
        if (cache.TryGetValue(key, out var cached)) return cached with { FromCache = true };
        var checks = Check(models, threads);
        string mode = Choose(checks);
        var native = checks.Single(c => c.Mode == TorchRuntime.Native);
        string reason = !native.Correct ? $"oneDNN differs from ATen by {native.MaxRelativeError:0.0e+0} (tolerance {Tolerance:0e+0})"
            : mode == TorchRuntime.Native ? "oneDNN agrees with ATen and is faster" : "oneDNN agrees with ATen but is not faster";
        var decision = new KernelDecision(mode, reason, key, checks, FromCache: false);
        cache[key] = decision;
        WriteCache(cachePath, cache);
        return decision;
    }

    static List<float[]> Pass(OnnxModule module, Tensor input, bool mkldnn)
    {
        TorchRuntime.MkldnnEnabled = mkldnn;
        using var scope = NewDisposeScope();
        module.zero_grad();
        var x = input.detach().clone().requires_grad_(true);
        var output = module.forward(x);
        manual_seed(2);
        (output * rand_like(output)).sum().backward();
        var values = new List<float[]> { output.detach().data<float>().ToArray(), x.grad!.data<float>().ToArray() };
        values.AddRange(module.parameters().Where(p => p.grad is not null).Select(p => p.grad!.data<float>().ToArray()));
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

    static string DefaultCachePath()
    {
        string root = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "paretoprune", "kernels.json");
    }

    static Dictionary<string, KernelDecision> ReadCache(string path)
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<Dictionary<string, KernelDecision>>(File.ReadAllText(path)) ?? [] : [];
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
            Reporting.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(cache, new JsonSerializerOptions { WriteIndented = true }));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only home costs a check per process, nothing else.
        }
    }
}
