using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Process-wide libtorch settings the training engine depends on, applied once before any TorchSharp work.
/// </summary>
public static class TorchRuntime
{
    static readonly Lazy<bool> Initialized = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>True when libtorch's oneDNN (MKLDNN) kernels were switched off (see <see cref="EnsureInitialized"/>).</summary>
    public static bool OneDnnDisabled => Initialized.Value;

    /// <summary>
    /// Switches off libtorch's oneDNN kernels. With libtorch-cpu 2.10.0 (TorchSharp 0.107.0) on this project's machines
    /// (AMD EPYC, Debian 12), oneDNN's backward-data convolution (and conv_transpose2d) returns wrong input gradients:
    /// deterministic but wrong on one thread, different from run to run on two (a race). ATen's own convolution gives
    /// the gradient a hand computation gives, on any number of threads; tests/Optimizer.Tests checks it. TorchSharp does
    /// not expose torch.backends.mkldnn.enabled, so this calls at::Context::setUserEnabledMkldnn(false) in libtorch_cpu.
    /// </summary>
    public static void EnsureInitialized() => _ = Initialized.Value;

    static bool Initialize()
    {
        zeros(1).Dispose(); // loads libtorch through TorchSharp's own resolver first
        if (!OperatingSystem.IsLinux()) return false;
        SetUserEnabledMkldnn(GlobalContext(), false);
        return true;
    }

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")]
    static extern IntPtr GlobalContext();

    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledMkldnnEb")]
    static extern void SetUserEnabledMkldnn(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
}
