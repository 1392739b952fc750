using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Process-wide libtorch settings the training engine depends on, applied once before any TorchSharp work.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<string> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>How libtorch's oneDNN kernels are used: "avx" (capped, the default), "off", or "native".</summary>
    public static string OneDnnMode => Initialized.Value;

    /// <summary>
    /// With libtorch-cpu 2.10.0 (TorchSharp 0.107.0) on this project's machines (AMD EPYC, Zen 5, AVX-512), oneDNN's
    /// AVX-512 and AVX2 backward-data convolutions (and conv_transpose2d) return wrong input gradients for some shapes:
    /// deterministic but wrong on one thread, different from run to run on two (a race). Its AVX kernels are right,
    /// and faster than switching oneDNN off (ATen's own im2col convolution). So oneDNN's ISA is capped at AVX through
    /// ONEDNN_MAX_CPU_ISA unless the user set that variable. PARETOPRUNE_ONEDNN=off switches oneDNN off entirely
    /// (at::Context::setUserEnabledMkldnn, which TorchSharp does not expose); =native leaves it alone.
    /// tests/Optimizer.Tests checks conv input gradients against a hand computation for the shapes the builders use.
    /// </summary>
    public static void EnsureInitialized() => _ = Initialized.Value;

    static string Initialize()
    {
        string mode = Environment.GetEnvironmentVariable("PARETOPRUNE_ONEDNN")?.ToLowerInvariant() ?? "avx";
        // oneDNN reads its ISA cap from the native environment when it creates its first kernel: set it before that.
        // (.NET's Environment.SetEnvironmentVariable does not reach the native environment on Unix.)
        if (mode == "avx" && !OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is null)
            SetEnv("ONEDNN_MAX_CPU_ISA", "AVX", 0);
        zeros(1).Dispose(); // loads libtorch through TorchSharp's own resolver
        if (mode == "off" && OperatingSystem.IsLinux()) SetUserEnabledMkldnn(GlobalContext(), false);
        return mode;
    }

    [DllImport("libc", EntryPoint = "setenv")]
    static extern int SetEnv(string name, string value, int overwrite);

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
}
