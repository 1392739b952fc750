using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Process-wide libtorch settings the training engine depends on, applied once before any TorchSharp work.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<string> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>How libtorch's oneDNN kernels are used: "off" (the default), "sse41" (capped), or "native".</summary>
    public static string OneDnnMode => Initialized.Value;

    /// <summary>
    /// With libtorch-cpu 2.10.0 (TorchSharp 0.107.0) on this project's machines (AMD EPYC, Zen 5, AVX-512), oneDNN's
    /// kernels are wrong in places: AVX-512 and AVX2 convolution backward-data returns wrong input gradients for some
    /// shapes (deterministic on one thread, racy on two), and with the ISA capped at AVX a forward pass of a
    /// PyTorch-exported graph (conv + pad + average pool) differs from ONNX Runtime by 1 %. ATen's own kernels agree
    /// with ONNX Runtime and with hand computations everywhere we test, so oneDNN is switched off by default
    /// (at::Context::setUserEnabledMkldnn, which TorchSharp does not expose). This costs speed (bench/RESULTS.md).
    /// PARETOPRUNE_ONEDNN=sse41 caps oneDNN at SSE4.1 (passes the same tests, faster), =native leaves it alone.
    /// Tests: conv input gradients against a hand computation, graph-module outputs against ONNX Runtime, and LRP's
    /// relevance conservation, which together caught every wrong case above.
    /// </summary>
    public static void EnsureInitialized() => _ = Initialized.Value;

    static string Initialize()
    {
        string mode = Environment.GetEnvironmentVariable("PARETOPRUNE_ONEDNN")?.ToLowerInvariant() ?? "off";
        // oneDNN reads its ISA cap from the native environment when it creates its first kernel: set it before that.
        // (.NET's Environment.SetEnvironmentVariable does not reach the native environment on Unix.)
        if (mode == "sse41" && !OperatingSystem.IsWindows() && Environment.GetEnvironmentVariable("ONEDNN_MAX_CPU_ISA") is null)
            SetEnv("ONEDNN_MAX_CPU_ISA", "SSE41", 0);
        zeros(1).Dispose(); // loads libtorch through TorchSharp's own resolver
        if (OperatingSystem.IsLinux())
        {
            if (mode == "off") SetUserEnabledMkldnn(GlobalContext(), false);
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

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
}
