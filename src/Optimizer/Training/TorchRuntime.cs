using System.Runtime.InteropServices;
using ParetoPrune.Objectives.Onnx.Proto;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Process-wide libtorch settings the training engine depends on, applied once before any TorchSharp work.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<bool> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>How libtorch's convolution kernels are used now: <see cref="KernelMode.Off"/> until <see cref="UseKernelsFor"/> decides.</summary>
    public static KernelMode OneDnnMode => !MkldnnEnabled ? KernelMode.Off : Decision?.Mode ?? KernelMode.Native;

    /// <summary>The override from PARETOPRUNE_ONEDNN (a <see cref="KernelModes.Name"/>), or null to let the self-check decide.</summary>
    public static KernelMode? Override
    {
        get
        {
            string? value = Environment.GetEnvironmentVariable("PARETOPRUNE_ONEDNN")?.Trim().ToLowerInvariant();
            if (string.IsNullOrEmpty(value)) return null;
            return KernelModes.TryParse(value, out var mode) ? mode
                : throw new ArgumentException($"PARETOPRUNE_ONEDNN={value} is not a kernel mode; use one of {string.Join(", ", KernelModes.All.Select(KernelModes.Name))}, or unset it to let the self-check choose");
        }
    }

    /// <summary>The kernels this process trains with and why; null before the first training.</summary>
    public static KernelDecision? Decision { get; private set; }

    /// <summary>Whether <paramref name="model"/> trains channels-last here (see <see cref="KernelDecision.ChannelsLastBlock"/>).</summary>
    public static bool ChannelsLastFor(ModelProto model) =>
        Decision is { Mode: KernelMode.ChannelsLast } d
        && (d.ChannelsLastBlock <= 1 || model.Graph.Node.Where(n => n.OpType == "Conv" && n.Input.Count > 1)
                                             .All(n => model.Graph.Initializer.FirstOrDefault(i => i.Name == n.Input[1]) is { Dims.Count: 4 } w
                                                       && w.Dims[0] % d.ChannelsLastBlock == 0));

    static readonly Lock Deciding = new();

    /// <summary>
    /// Decides once per process, before the first module is built, which convolution kernels (and tensor layout) to use
    /// (<see cref="KernelSelection"/>: the fastest that agree with ATen on the builders' and this model's shapes, cached
    /// per machine), unless PARETOPRUNE_ONEDNN overrides it. Later models (pruned candidates of the same base: the same
    /// kernels with fewer channels) keep the decision.
    /// </summary>
    public static KernelDecision UseKernelsFor(ModelProto? model, int threads)
    {
        EnsureInitialized();
        lock (Deciding)
        {
            if (Decision is { } made) return made;
            var decision = Override is { } forced
                ? new KernelDecision(forced, "PARETOPRUNE_ONEDNN override", "", [], FromCache: false)
                : KernelSelection.Decide(model, threads);
            decision = Cap(decision);
            MkldnnEnabled = decision.Mode != KernelMode.Off;
            return Decision = decision;
        }
    }

    /// <summary>
    /// Trains with the kernels a study was created with (<paramref name="mode"/>, <paramref name="channelsLastBlock"/>),
    /// so that every worker of the study computes the same numbers, whichever kernels this machine's own timing would
    /// pick. Only where this machine's check found that mode correct (ATen, the reference, always is) and the process can
    /// still switch to it (a capped mode needs oneDNN not yet started uncapped, and nothing uncapped after a capped one);
    /// otherwise, and where PARETOPRUNE_ONEDNN overrides, this machine's own decision stands and its reason says why.
    /// </summary>
    public static KernelDecision UseKernels(KernelMode mode, int channelsLastBlock, ModelProto? model)
    {
        EnsureInitialized();
        lock (Deciding)
        {
            // ATen's kernels are the reference, correct everywhere: nothing to check before using them.
            if (mode == KernelMode.Off && Decision is null && Override is null)
            {
                MkldnnEnabled = false;
                return Decision = new KernelDecision(KernelMode.Off, "the study's kernels: ATen, the reference (no check needed)", "", [], FromCache: false);
            }
        }
        UseKernelsFor(model, Environment.ProcessorCount);
        lock (Deciding)
        {
            var local = Decision!;
            if (local.Mode == mode && (mode != KernelMode.ChannelsLast || local.ChannelsLastBlock == channelsLastBlock)) return local;
            string? why = Override is not null ? "PARETOPRUNE_ONEDNN overrides it"
                : mode == KernelMode.Off ? null // ATen: always correct, always possible
                : local.Mode.Cap() is { } localCap ? $"oneDNN is capped at {localCap} in this process"
                : !local.Checks.Any(c => c.Mode == mode && c.Correct) ? $"{mode.Name()} was not found correct on this machine"
                : null;
            if (why is not null)
                return Decision = local with { Reason = KernelDecision.Join(local.Reason, $"not the study's {mode.Name()}: {why} (results may differ from other workers' in the last digits)") };
            var chosen = Cap(local with { Mode = mode, ChannelsLastBlock = channelsLastBlock, Reason = $"the study's kernels, checked correct here (this machine alone would choose {local.Mode.Name()}{(local.Reason.Length > 0 ? $": {local.Reason}" : "")})" });
            MkldnnEnabled = chosen.Mode != KernelMode.Off;
            return Decision = chosen;
        }
    }

    /// <summary>Whether a oneDNN kernel may have run in this process (its instruction set is fixed from then on).</summary>
    static bool oneDnnStarted;

    /// <summary>
    /// Caps oneDNN's instruction set for a capped mode. oneDNN reads ONEDNN_MAX_CPU_ISA from the native environment when it
    /// creates its first kernel, which libtorch does only with oneDNN on (it starts off here), so setting it before the
    /// first switch-on is in time; after that the cap cannot change, and the process trains with ATen instead.
    /// (.NET's Environment.SetEnvironmentVariable does not reach the native environment on Unix.)
    /// </summary>
    static KernelDecision Cap(KernelDecision decision)
    {
        if (decision.Mode.Cap() is not { } isa) return decision;
        string? set = Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA");
        if (set is not null && !set.Equals(isa, StringComparison.OrdinalIgnoreCase))
            return decision with { Mode = KernelMode.Off, Reason = KernelDecision.Join(decision.Reason, $"ATen instead: ONEDNN_MAX_CPU_ISA={set} is set, not {isa}") };
        if (set is null && oneDnnStarted)
            return decision with { Mode = KernelMode.Off, Reason = KernelDecision.Join(decision.Reason, $"ATen in this process: oneDNN already ran uncapped here, so {decision.Mode.Name()} applies from the next one") };
        if (set is null)
        {
            if (!OperatingSystem.IsLinux()) return decision with { Mode = KernelMode.Off, Reason = KernelDecision.Join(decision.Reason, "ATen instead: the cap is set on Linux only") };
            SetEnv("ONEDNN_MAX_CPU_ISA", isa, 1);
        }
        return decision;
    }

    /// <summary>Whether libtorch may use oneDNN (at::Context::userEnabledMkldnn); read per convolution, so the self-check can switch it.</summary>
    public static bool MkldnnEnabled
    {
        get
        {
            EnsureInitialized();
            return !OperatingSystem.IsLinux() || UserEnabledMkldnn(GlobalContext());
        }
        internal set
        {
            EnsureInitialized();
            oneDnnStarted |= value;
            if (OperatingSystem.IsLinux()) SetUserEnabledMkldnn(GlobalContext(), value);
        }
    }

    /// <summary>
    /// With libtorch-cpu 2.10.0 (TorchSharp 0.107.0) on one AMD EPYC (Zen 5, AVX-512) machine, oneDNN's kernels were wrong
    /// in places: AVX-512 and AVX2 convolution backward-data returned wrong input gradients for some shapes (deterministic
    /// on one thread, racy on two), and capped at AVX a forward pass (conv + pad + average pool) was 1 % off; on another
    /// machine of the same family they are right and 3–4× faster than ATen's. So libtorch starts with oneDNN off
    /// (at::Context::setUserEnabledMkldnn, which TorchSharp does not expose) and <see cref="UseKernelsFor"/> switches it on
    /// only where <see cref="KernelSelection"/> finds it correct and faster, capped at a narrower instruction set if need be.
    /// PARETOPRUNE_ONEDNN (<see cref="KernelModes.Name"/>) overrides.
    /// </summary>
    public static void EnsureInitialized() => _ = Initialized.Value;

    static bool Initialize()
    {
        _ = Override; // an invalid override fails before anything loads
        try
        {
            zeros(1).Dispose(); // loads libtorch through TorchSharp's own resolver
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException)
        {
            throw new InvalidOperationException(ExplainLoadFailure(e.InnerException?.Message ?? e.Message, LoaderError()), e);
        }
        if (OperatingSystem.IsLinux())
        {
            SetUserEnabledMkldnn(GlobalContext(), false);
            // Without oneDNN, libtorch tries NNPACK for every convolution; on CPUs NNPACK does not support it prints
            // "Could not initialize NNPACK! Reason: Unsupported hardware" each time and falls back anyway.
            SetUserEnabledNnpack(GlobalContext(), false);
        }
        return true;
    }

    /// <summary>
    /// Why TorchSharp could not load libtorch, in words that name the cause. TorchSharp's own message blames a missing
    /// libtorch-cpu package reference; on Debian 12 the real cause is the dynamic loader refusing libLibTorchSharp.so,
    /// which asks for a newer libstdc++ (GLIBCXX_3.4.32) than the system's.
    /// </summary>
    /// <param name="failure">TorchSharp's message.</param>
    /// <param name="loader">The dynamic loader's own error for libLibTorchSharp.so, or null when it loads or is not found.</param>
    internal static string ExplainLoadFailure(string failure, string? loader)
    {
        if (loader is not null && loader.Contains("GLIBCXX_", StringComparison.Ordinal))
            // .NET's message wraps the loader's (dlerror) after advice on strace: keep the loader's line.
            return $"TorchSharp's native library needs a newer C++ runtime than this system's ({loader.Split('\n').Last(l => l.Contains("GLIBCXX_", StringComparison.Ordinal)).Trim()}). " +
                   "Build the program from the ParetoPrune.Optimizer package or inside this repository: their build step marks that " +
                   "requirement weak in the copy in the output folder (build/TorchSharpGlibcxx.targets), which is safe for this " +
                   "library. Or install the libstdc++ of gcc 13 or newer.";
        return $"TorchSharp could not load libtorch: {failure}" + (loader is null ? "" : $" (the dynamic loader says: {loader.Trim()})");
    }

    /// <summary>The dynamic loader's error for the libLibTorchSharp.so beside the program, or null.</summary>
    static string? LoaderError()
    {
        try
        {
            string? library = Directory.EnumerateFiles(AppContext.BaseDirectory, "libLibTorchSharp.so", SearchOption.AllDirectories).FirstOrDefault();
            if (library is null) return null;
            NativeLibrary.Free(NativeLibrary.Load(library));
            return null;
        }
        catch (DllNotFoundException e)
        {
            return e.Message;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or BadImageFormatException)
        {
            return null;
        }
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);

    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledMkldnnEv")]
    [return: MarshalAs(UnmanagedType.U1)]
    static extern bool UserEnabledMkldnn(IntPtr context);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
}
