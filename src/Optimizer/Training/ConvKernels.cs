using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ParetoPrune.Optimizer.Training;

/// <summary>The kernels one convolution can run on.</summary>
public enum ConvKernel
{
    /// <summary>ATen's own kernels, the reference: float32 while oneDNN is off in the process, else float64 (libtorch
    /// never sends a float64 convolution to oneDNN), so one layer can use it while its neighbours use oneDNN.</summary>
    Aten,
    /// <summary>oneDNN on NCHW tensors (at the process's instruction-set cap, if any).</summary>
    OneDnnNchw,
    /// <summary>oneDNN on channels-last tensors (NHWC memory): other oneDNN kernels, checked on their own.</summary>
    OneDnnChannelsLast,
}

/// <summary>
/// What decides which oneDNN kernel runs a convolution, so what is checked once per machine: the convolution's channels,
/// kernel, stride, padding, dilation and groups, its input's spatial size, the batch (in power-of-two buckets: oneDNN
/// splits work across threads by it) and the intra-op threads (one faulty kernel was racy on two threads).
/// </summary>
public readonly record struct ConvSignature(int InChannels, int OutChannels, int KernelH, int KernelW, int StrideH, int StrideW,
                                            int PadH, int PadW, int DilationH, int DilationW, int Groups, int Height, int Width,
                                            int BatchBucket, bool Bias, int Threads)
{
    /// <summary>The bucket of a batch size: the next power of two, at most 256 (the batch the check runs).</summary>
    public static int Bucket(long batch) => (int)Math.Min(256, System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)Math.Max(1, batch)));

    public override string ToString() =>
        $"{InChannels}→{OutChannels} k{KernelH}x{KernelW} s{StrideH}x{StrideW} p{PadH}x{PadW} d{DilationH}x{DilationW} g{Groups} " +
        $"{Height}x{Width} n≤{BatchBucket}{(Bias ? " bias" : "")} t{Threads}";
}

/// <summary>One convolution signature checked in one kernel against the reference, or marked wrong by the training guard.</summary>
/// <param name="Error">Largest |kernel − reference| / max |reference| over the output, input and weight gradients.</param>
/// <param name="Reason">Why it is wrong when the check passed but training showed it (<see cref="KernelGuard"/>).</param>
public sealed record ConvCheck(bool Correct, double Error, double Seconds, string? Reason = null);

/// <summary>
/// Runs convolutions on the kernel chosen for each, and checks each (signature, kernel) once per machine against the
/// reference before it is used: forward, input gradient and weight gradient of the convolution alone, on random data of
/// its shapes, at the bucket's batch size. libtorch's oneDNN kernels were wrong on one AMD EPYC for some shapes only, so a
/// check of some shapes says nothing of others (bench/RESULTS.md, "Correct on every CPU"). Verdicts are cached per
/// machine (CPU, flags, libtorch, instruction-set cap) in <c>convolutions.json</c> beside the kernel decision; the guard's
/// marks are stored there too. Thread-safe: trainings running side by side share the verdicts; checks run one at a time.
/// </summary>
public static class ConvKernels
{
    static readonly ConcurrentDictionary<(ConvSignature, ConvKernel), ConvCheck> Verdicts = new();
    static readonly Lock Checking = new();
    static readonly Lazy<string> Machine = new(KernelSelection.MachineKey);
    static bool loaded;
    static string? cachePath;
    static long checkCount;
    static long checkTicks;
    static long wrongCount;

    /// <summary>The cache file (default: <c>$XDG_CACHE_HOME/paretoprune/convolutions.json</c>); tests point it elsewhere.</summary>
    internal static string CachePath
    {
        get => cachePath ??= Path.Combine(Path.GetDirectoryName(KernelSelection.DefaultCachePath())!, "convolutions.json");
        set
        {
            lock (Checking)
            {
                if (unsaved && cachePath is not null) Save();
                cachePath = value;
            }
            Forget();
        }
    }

    /// <summary>Drops the verdicts held in memory; the next use reads the cache again.</summary>
    internal static void Forget()
    {
        lock (Checking)
        {
            loaded = false;
            Verdicts.Clear();
        }
    }

    /// <summary>Checks run by this process so far, and their total time: what verification costs.</summary>
    public static (long Count, TimeSpan Time) CheckCost => (Interlocked.Read(ref checkCount), TimeSpan.FromTicks(Interlocked.Read(ref checkTicks)));

    /// <summary>Kernels this process found wrong for a signature (by a check, or marked by the guard): each one avoided since.</summary>
    public static long WrongFound => Interlocked.Read(ref wrongCount);

    /// <summary>The verdict for <paramref name="signature"/> in <paramref name="kernel"/>: cached, or checked now.</summary>
    internal static ConvCheck Verify(ConvSignature signature, ConvKernel kernel)
    {
        if (kernel == ConvKernel.Aten) return new ConvCheck(true, 0, 0);
        if (Verdicts.TryGetValue((signature, kernel), out var known)) return known;
        lock (Checking)
        {
            Load();
            if (Verdicts.TryGetValue((signature, kernel), out known)) return known;
            var verdict = Check(signature, kernel);
            Verdicts[(signature, kernel)] = verdict;
            if (!verdict.Correct) Interlocked.Increment(ref wrongCount);
            unsaved = true;
            // A candidate's first step checks several signatures in a row: one write for them (Flush after each training
            // and at exit writes the rest). The file holds every shape this machine has seen, so a write is not free.
            if (sinceSave.Elapsed >= SaveInterval) Save();
            return verdict;
        }
    }

    static readonly int[] Buckets = Enumerable.Range(0, 9).Select(i => 1 << i).ToArray(); // 1 … 256, as ConvSignature.Bucket gives

    /// <summary>Marks kernels wrong for signatures whose training the guard had to re-run on the reference; stored, so that no
    /// later training here uses them.</summary>
    internal static void MarkWrong(IEnumerable<(ConvSignature Signature, ConvKernel Kernel)> used, string reason)
    {
        lock (Checking)
        {
            Load();
            // A kernel caught failing at run time is not trusted for that shape at any batch or thread count: a fault seen at
            // one batch size is likely at the next, and the post-training checks run at other batch sizes than the training.
            var wrong = used.Where(u => u.Kernel != ConvKernel.Aten).ToList();
            int threads = Math.Max(2, Environment.ProcessorCount);
            var keys = wrong
                .SelectMany(u => Buckets.SelectMany(b => Enumerable.Range(1, threads).Select(t => (u.Signature with { BatchBucket = b, Threads = t }, u.Kernel))))
                .ToList();
            // Counted once per shape and kernel newly caught (the guard and the accuracy check may both report one).
            Interlocked.Add(ref wrongCount, wrong.Select(u => (u.Signature with { BatchBucket = 0, Threads = 0 }, u.Kernel)).Distinct()
                                                 .Count(k => !Verdicts.TryGetValue((k.Item1 with { BatchBucket = 1, Threads = 1 }, k.Kernel), out var v) || v.Correct));
            foreach (var key in keys)
                Verdicts[key] = (Verdicts.TryGetValue(key, out var v) ? v : new ConvCheck(false, double.NaN, 0)) with { Correct = false, Reason = reason };
            Save();
        }
    }

    /// <summary>The kernel a convolution runs on: the preferred oneDNN layout where it was found correct for the signature,
    /// else the other, else the reference. Only ATen's while oneDNN is off in this process.</summary>
    internal static ConvKernel Choose(ConvSignature signature, bool preferChannelsLast)
    {
        if (!TorchRuntime.MkldnnEnabled) return ConvKernel.Aten;
        var first = preferChannelsLast ? ConvKernel.OneDnnChannelsLast : ConvKernel.OneDnnNchw;
        if (Verify(signature, first).Correct) return first;
        var second = preferChannelsLast ? ConvKernel.OneDnnNchw : ConvKernel.OneDnnChannelsLast;
        return Verify(signature, second).Correct ? second : ConvKernel.Aten;
    }

    /// <summary>The signature of a 2-D convolution of <paramref name="input"/> (already padded where pads were asymmetric).</summary>
    internal static ConvSignature Signature(Tensor input, Tensor weight, bool bias, long[] strides, long[] padding, long[] dilations, long groups) =>
        new((int)input.shape[1], (int)weight.shape[0], (int)weight.shape[2], (int)weight.shape[3], (int)strides[0], (int)strides[1],
            (int)padding[0], (int)padding[1], (int)dilations[0], (int)dilations[1], (int)groups, (int)input.shape[2], (int)input.shape[3],
            ConvSignature.Bucket(input.shape[0]), bias, get_num_threads());

    /// <summary>A 2-D convolution on <paramref name="kernel"/>, in that kernel's layout; results in NCHW shape (channels-last
    /// memory for <see cref="ConvKernel.OneDnnChannelsLast"/>).</summary>
    internal static Tensor Run(ConvKernel kernel, ConvSignature signature, Tensor input, Tensor weight, Tensor? bias, long[] strides, long[] padding,
                               long[] dilations, long groups, bool checking = false)
    {
        Tensor output;
        switch (kernel)
        {
            case ConvKernel.Aten when TorchRuntime.MkldnnEnabled:
                output = F.conv2d(input.to(ScalarType.Float64), weight.to(ScalarType.Float64), bias?.to(ScalarType.Float64), strides, padding, dilations, groups)
                          .to(ScalarType.Float32);
                break;
            case ConvKernel.Aten:
            case ConvKernel.OneDnnNchw:
                output = F.conv2d(IsChannelsLast(input) ? input.contiguous() : input, weight, bias, strides, padding, dilations, groups);
                break;
            default:
                output = F.conv2d(IsChannelsLast(input) ? input : OnnxModule.ToChannelsLast(input), OnnxModule.ToChannelsLast(weight), bias,
                                  strides, padding, dilations, groups);
                break;
        }
        return KernelFault.Injected is { } fault && fault.Applies(kernel, signature, checking) ? fault.Corrupt(output) : output;
    }

    /// <summary>NHWC strides on a 4-D tensor of more than one channel (one channel is the same memory either way).</summary>
    static bool IsChannelsLast(Tensor t)
    {
        if (t.dim() != 4 || t.shape[1] == 1) return false;
        var s = t.stride();
        return s[1] == 1 && s[3] == t.shape[1] && s[2] == t.shape[1] * t.shape[3];
    }

    /// <summary>Distinct images in a check's batch (see <see cref="Check"/>): odd, so that no power-of-two blocking of the
    /// batch maps an image onto an identical one.</summary>
    const int DistinctImages = 3;

    /// <summary>
    /// The check: the convolution alone in <paramref name="kernel"/> at the bucket's batch size, compared in full (output,
    /// input, weight and bias gradients) with ATen in float64 on the same data. The batch repeats three random images, so
    /// the reference needs only those three: image n must match image n mod 3, and the weight gradient is the three
    /// images' gradients weighted by how often each occurs. A kernel that mixes up images, channels or pixels, or races,
    /// still shows, and the check costs about one training step of that convolution, mostly oneDNN building the kernels
    /// the training then reuses. Never touches libtorch's global random numbers or kernel flags, so it can run in the middle
    /// of another training.
    /// </summary>
    static ConvCheck Check(ConvSignature s, ConvKernel kernel)
    {
        var watch = Stopwatch.StartNew();
        using var inference = inference_mode(false);
        using var grad = enable_grad(true);
        using var scope = NewDisposeScope();
        var random = new Random(HashCode.Combine(s.InChannels, s.OutChannels, s.KernelH, s.Height, s.Groups));
        int n = s.BatchBucket, distinct = Math.Min(n, DistinctImages);
        int outH = (s.Height + 2 * s.PadH - s.DilationH * (s.KernelH - 1) - 1) / s.StrideH + 1;
        int outW = (s.Width + 2 * s.PadW - s.DilationW * (s.KernelW - 1) - 1) / s.StrideW + 1;
        long[] weightShape = [s.OutChannels, s.InChannels / s.Groups, s.KernelH, s.KernelW];
        long fanIn = weightShape[1] * s.KernelH * s.KernelW;
        var x = Normal(random, [distinct, s.InChannels, s.Height, s.Width], 1);
        var w = Normal(random, weightShape, 1 / Math.Sqrt(fanIn));
        var b = s.Bias ? Normal(random, [s.OutChannels], 0.1) : null;
        var r = Normal(random, [distinct, s.OutChannels, outH, outW], 1);
        long[] strides = [s.StrideH, s.StrideW], padding = [s.PadH, s.PadW], dilations = [s.DilationH, s.DilationW];
        var tile = tensor(Enumerable.Range(0, n).Select(i => (long)(i % distinct)).ToArray());
        var occurrences = tensor(Enumerable.Range(0, distinct).Select(k => (double)((n - k + distinct - 1) / distinct)).ToArray()).reshape(distinct, 1, 1, 1);

        // The reference, on the distinct images: the loss weights image k by its occurrences, so the weight and bias
        // gradients are the whole batch's, and the input gradients are divided back.
        var xr = x.to(ScalarType.Float64).requires_grad_(true);
        var wr = w.to(ScalarType.Float64).requires_grad_(true);
        var br = b?.to(ScalarType.Float64).requires_grad_(true);
        var yr = F.conv2d(xr, wr, br, strides, padding, dilations, s.Groups);
        (yr * r.to(ScalarType.Float64) * occurrences).sum().backward();

        var xk = x.index_select(0, tile).requires_grad_(true);
        var wk = w.clone().requires_grad_(true);
        var bk = b?.clone().requires_grad_(true);
        var yk = Run(kernel, s, xk, wk, bk, strides, padding, dilations, s.Groups, checking: true);
        (yk * r.index_select(0, tile)).sum().backward();

        // Compared in libtorch (no copies out): image n of the batch against the reference's image n mod 3.
        double error = new[]
        {
            Error(yr, yk, tile), Error(xr.grad! / occurrences, xk.grad!, tile), Error(wr.grad!, wk.grad!, null),
            br is null ? 0 : Error(br.grad!, bk!.grad!, null),
        }.Max();
        var seconds = watch.Elapsed;
        Interlocked.Increment(ref checkCount);
        Interlocked.Add(ref checkTicks, seconds.Ticks);
        return new ConvCheck(error <= KernelSelection.Tolerance, error, seconds.TotalSeconds);
    }

    /// <summary>max |value − reference| / max |reference| (see <see cref="KernelSelection.RelativeError"/>); infinite where a
    /// value is not finite. <paramref name="tile"/> maps each image of the batch to its reference image.</summary>
    static double Error(Tensor reference, Tensor value, Tensor? tile)
    {
        var expected = tile is null ? reference.detach() : reference.detach().index_select(0, tile);
        double scale = Math.Max(expected.abs().max().item<double>(), 1e-12);
        double diff = (value.detach().to(ScalarType.Float64) - expected).abs().max().item<double>();
        return double.IsFinite(diff) ? diff / scale : double.PositiveInfinity;
    }

    static Tensor Normal(Random random, long[] shape, double scale)
    {
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(scale * random.NextGaussian());
        return tensor(values, shape);
    }

    // The cache: { machine key: { "signature|kernel": check } }. A corrupt or unreadable file is checked again, never trusted.

    sealed record Entry(ConvSignature Signature, ConvKernel Kernel, ConvCheck Check);

    static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    static Dictionary<string, List<Entry>> ReadFile()
    {
        try
        {
            return File.Exists(CachePath) ? JsonSerializer.Deserialize<Dictionary<string, List<Entry>>>(File.ReadAllText(CachePath), Json) ?? [] : [];
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            return [];
        }
    }

    static void Load()
    {
        if (loaded) return;
        loaded = true;
        // Under an injected fault the stored verdicts (reached without it) would let the faulty kernel through unchecked.
        if (KernelFault.Injected is null && ReadFile().TryGetValue(Machine.Value, out var entries))
            foreach (var e in entries) Verdicts.TryAdd((e.Signature, e.Kernel), e.Check);
    }

    static bool unsaved;
    static readonly Stopwatch sinceSave = Stopwatch.StartNew();
    static readonly TimeSpan SaveInterval = TimeSpan.FromSeconds(2);

    static ConvKernels() => AppDomain.CurrentDomain.ProcessExit += (_, _) => Flush();

    /// <summary>Writes verdicts not yet in the cache file (after a training, and at exit).</summary>
    internal static void Flush()
    {
        lock (Checking)
            if (unsaved) Save();
    }

    static void Save()
    {
        unsaved = false;
        sinceSave.Restart();
        if (KernelFault.Injected is not null) return; // an injected fault's verdicts are this process's alone
        try
        {
            var file = ReadFile();
            // Another process's verdicts for this machine are kept; ours win where both checked, except that a kernel found
            // wrong (by anyone) stays wrong: this process may hold a "correct" read before another process caught it.
            var merged = (file.GetValueOrDefault(Machine.Value) ?? []).ToDictionary(e => (e.Signature, e.Kernel));
            foreach (var (key, check) in Verdicts)
                if (!merged.TryGetValue(key, out var theirs) || theirs.Check.Correct || !check.Correct)
                    merged[key] = new Entry(key.Item1, key.Item2, check);
            file[Machine.Value] = [.. merged.Values];
            Reporting.AtomicFile.WriteAllText(CachePath, JsonSerializer.Serialize(file, Json));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only home costs a check per process, nothing else.
        }
    }
}

/// <summary>
/// Which kernels one module's convolutions use, and which they did use (the trained model's provenance, and what the guard
/// marks wrong when a training under them fails but succeeds on the reference).
/// </summary>
public sealed class ConvKernelPlan
{
    readonly ConcurrentDictionary<(ConvSignature, ConvKernel), int> used = new();

    /// <summary>Every convolution on the reference (the guard's re-run).</summary>
    public bool ReferenceOnly { get; init; }

    /// <summary>Every convolution on this kernel, unchecked: the whole-model kernel check and benchmarks compare kernels this way.</summary>
    internal ConvKernel? Forced { get; init; }

    internal ConvKernel Choose(ConvSignature signature, bool preferChannelsLast)
    {
        var kernel = Forced ?? (ReferenceOnly ? ConvKernel.Aten : ConvKernels.Choose(signature, preferChannelsLast));
        used.AddOrUpdate((signature, kernel), 1, (_, n) => n + 1);
        return kernel;
    }

    /// <summary>The (signature, kernel) pairs that ran.</summary>
    public IReadOnlyCollection<(ConvSignature Signature, ConvKernel Kernel)> Used => used.Keys.ToList();

    /// <summary>Whether any convolution ran on oneDNN.</summary>
    public bool UsedOneDnn => used.Keys.Any(k => k.Item2 != ConvKernel.Aten);

    /// <summary>"oneDNN channels-last for 4 convolution shapes, ATen for 1 (…)": which kernels trained, for provenance.</summary>
    public string Describe()
    {
        var byKernel = used.Keys.Select(k => (k.Item1 with { BatchBucket = 0 }, k.Item2)).Distinct().GroupBy(k => k.Item2).OrderBy(g => g.Key).ToList();
        if (byKernel.Count == 0) return "no convolution ran";
        return string.Join(", ", byKernel.Select(g => $"{Name(g.Key)} for {g.Count()} convolution shape{(g.Count() == 1 ? "" : "s")}")) +
               (ReferenceOnly ? " (the reference, forced)" : Forced is not null ? " (forced, unchecked)" : byKernel.Any(g => g.Key != ConvKernel.Aten) ? $", each checked against ATen on this machine (largest relative error {LargestError():0.0e+0})" : "");
    }

    /// <summary>The largest relative error any oneDNN kernel used here showed in its check (the evidence it was right).</summary>
    double LargestError() => used.Keys.Where(k => k.Item2 != ConvKernel.Aten).Select(k => ConvKernels.Verify(k.Item1, k.Item2).Error)
                                 .Where(double.IsFinite).DefaultIfEmpty(0).Max();

    public static string Name(ConvKernel kernel) => kernel switch
    {
        ConvKernel.Aten => TorchRuntime.MkldnnEnabled ? "ATen (float64)" : "ATen",
        ConvKernel.OneDnnNchw => "oneDNN NCHW",
        _ => "oneDNN channels-last",
    };
}

/// <summary>
/// For tests only: makes one oneDNN kernel return wrong results, so that detection, selection and the guard are proven on
/// any machine, whether or not its own oneDNN is faulty. Set by <c>PARETOPRUNE_TEST_KERNEL_FAULT</c> =
/// <c>native|channels-last[:nan][:unchecked][@OUT,OUT…]</c>: outputs of convolutions with those output channels (all when
/// none are listed) come from the wrong images (a batch rotated by one), or are NaN with <c>:nan</c>; with
/// <c>:unchecked</c> the kernel check does not see it (a fault the check missed), so only the guard can.
/// </summary>
public sealed record KernelFault(ConvKernel Kernel, bool Nan, bool Unchecked, IReadOnlySet<int> OutChannels)
{
    public const string Variable = "PARETOPRUNE_TEST_KERNEL_FAULT";

    /// <summary>The fault in force: from the environment at start; tests of this process may set it.</summary>
    public static KernelFault? Injected
    {
        get => injected;
        internal set
        {
            injected = value;
            ConvKernels.Forget(); // verdicts reached with another fault (or none) in force do not hold under this one
        }
    }

    static KernelFault? injected = Parse(Environment.GetEnvironmentVariable(Variable));

    public static KernelFault? Parse(string? spec)
    {
        if (string.IsNullOrWhiteSpace(spec)) return null;
        string[] at = spec.Trim().Split('@', 2);
        string[] parts = at[0].Split(':');
        var kernel = parts[0] switch
        {
            "native" => ConvKernel.OneDnnNchw,
            "channels-last" => ConvKernel.OneDnnChannelsLast,
            _ => throw new ArgumentException($"{Variable}={spec}: the kernel must be native or channels-last"),
        };
        var flags = parts.Skip(1).ToHashSet();
        if (flags.Except(["nan", "unchecked"]).FirstOrDefault() is { } bad) throw new ArgumentException($"{Variable}={spec}: unknown flag '{bad}' (nan, unchecked)");
        var channels = at.Length > 1 ? at[1].Split(',').Select(int.Parse).ToHashSet() : [];
        return new KernelFault(kernel, flags.Contains("nan"), flags.Contains("unchecked"), channels);
    }

    internal bool Applies(ConvKernel kernel, ConvSignature signature, bool checking) =>
        kernel == Kernel && TorchRuntime.MkldnnEnabled && !(checking && Unchecked) && (OutChannels.Count == 0 || OutChannels.Contains(signature.OutChannels));

    internal Tensor Corrupt(Tensor output) => Nan ? output.Times(double.NaN) : output.shape[0] > 1 ? output.roll(1, 0) : output.neg();

    public override string ToString() =>
        $"{(Kernel == ConvKernel.OneDnnNchw ? "native" : "channels-last")}{(Nan ? ":nan" : "")}{(Unchecked ? ":unchecked" : "")}" +
        (OutChannels.Count > 0 ? "@" + string.Join(",", OutChannels.Order()) : "");
}
