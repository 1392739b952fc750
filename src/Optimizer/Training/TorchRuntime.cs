using System.Runtime.InteropServices;
using ParetoPrune.Objectives.Onnx.Proto;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Process-wide libtorch settings the training engine depends on, applied once before any TorchSharp work.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<string> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Kernel modes: ATen's own kernels (the reference); oneDNN on NCHW tensors; oneDNN on channels-last tensors (NCHW
    /// shape, NHWC memory: oneDNN's fastest layout, no reorders around each convolution); oneDNN capped at SSE4.1 (by
    /// override only: the cap must be set before libtorch loads).</summary>
    public const string Off = "off", Native = "native", ChannelsLast = "channels-last", Sse41 = "sse41";

    /// <summary>The modes PARETOPRUNE_ONEDNN accepts.</summary>
    public static IReadOnlyList<string> Modes { get; } = [Off, Native, ChannelsLast, Sse41];

    /// <summary>How libtorch's convolution kernels are used now: <see cref="Off"/> until <see cref="UseKernelsFor"/> decides.</summary>
    public static string OneDnnMode => !MkldnnEnabled ? Off : Initialized.Value == Sse41 ? Sse41 : Decision?.Mode ?? Native;

    /// <summary>The override from PARETOPRUNE_ONEDNN (one of <see cref="Modes"/>), or null to let the self-check decide.</summary>
    public static string? Override
    {
        get
        {
            string? value = Environment.GetEnvironmentVariable("PARETOPRUNE_ONEDNN")?.Trim().ToLowerInvariant();
            if (string.IsNullOrEmpty(value)) return null;
            return Modes.Contains(value) ? value
                : throw new ArgumentException($"PARETOPRUNE_ONEDNN={value} is not a kernel mode; use one of {string.Join(", ", Modes)}, or unset it to let the self-check choose");
        }
    }

    /// <summary>The kernels this process trains with and why; null before the first training.</summary>
    public static KernelDecision? Decision { get; private set; }

    /// <summary>Whether <paramref name="model"/> trains channels-last here (see <see cref="KernelDecision.ChannelsLastBlock"/>).</summary>
    public static bool ChannelsLastFor(ModelProto model) =>
        Decision is { Mode: ChannelsLast } d
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
            MkldnnEnabled = decision.Mode != Off;
            return Decision = decision;
        }
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
            if (OperatingSystem.IsLinux()) SetUserEnabledMkldnn(GlobalContext(), value);
        }
    }

    /// <summary>
    /// With libtorch-cpu 2.10.0 (TorchSharp 0.107.0) on one AMD EPYC (Zen 5, AVX-512) machine, oneDNN's kernels were wrong
    /// in places: AVX-512 and AVX2 convolution backward-data returned wrong input gradients for some shapes (deterministic
    /// on one thread, racy on two), and capped at AVX a forward pass (conv + pad + average pool) was 1 % off; on another
    /// machine of the same family they are right and 3–4× faster than ATen's. So libtorch starts with oneDNN off
    /// (at::Context::setUserEnabledMkldnn, which TorchSharp does not expose) and <see cref="UseKernelsFor"/> switches it on
    /// only where <see cref="KernelSelection"/> finds it correct and faster. PARETOPRUNE_ONEDNN (<see cref="Modes"/>) overrides.
    /// </summary>
    public static void EnsureInitialized() => _ = Initialized.Value;

    static string Initialize()
    {
        string mode = Override ?? Off;
        // oneDNN reads its ISA cap from the native environment when it creates its first kernel: set it before that.
        // (.NET's Environment.SetEnvironmentVariable does not reach the native environment on Unix.)
        if (mode == Sse41 && !OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is null)
            SetEnv("ONEDNN_MAX_CPU_ISA", "SSE41", 0);
        zeros(1).Dispose(); // loads libtorch through TorchSharp's own resolver
        if (OperatingSystem.IsLinux())
        {
            if (mode == Off) SetUserEnabledMkldnn(GlobalContext(), false);
            // Without oneDNN, libtorch tries NNPACK for every convolution; on CPUs NNPACK does not support it prints
            // "Could not initialize NNPACK! Reason: Unsupported hardware" each time and falls back anyway.
            SetUserEnabledNnpack(GlobalContext(), false);
        }
        return mode;
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
