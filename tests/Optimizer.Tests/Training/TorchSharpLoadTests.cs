using ParetoPrune.Tests.Shared;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>TorchSharp's native library loads on this machine (build/TorchSharpGlibcxx.targets) and computes correctly.</summary>
public class TorchSharpLoadTests
{
    [Fact]
    public void ConvolutionForwardAndBackwardMatchAHandComputation()
    {
        using var scope = NewDisposeScope();
        // 1×1×3×3 input, 2×2 kernel of ones: each output is the sum of a 2×2 window.
        var input = arange(9, dtype: float32).reshape(1, 1, 3, 3).requires_grad_(true);
        var weight = ones(1, 1, 2, 2, dtype: float32).requires_grad_(true);
        var output = nn.functional.conv2d(input, weight);
        Assert.Equal(new float[] { 8, 12, 20, 24 }, output.data<float>().ToArray());

        output.sum().backward();
        // d(sum)/d(input): how many windows cover each pixel; d(sum)/d(weight): sum of the pixels each tap sees.
        Assert.Equal(new float[] { 1, 2, 1, 2, 4, 2, 1, 2, 1 }, input.grad!.data<float>().ToArray());
        Assert.Equal(new float[] { 8, 12, 20, 24 }, weight.grad!.data<float>().ToArray());
    }

    /// <summary>
    /// The input gradient of a convolution against a hand computation, for the shapes the builders use, on one and two
    /// threads, on the kernel the project chooses for that shape (<see cref="ConvKernels.Choose"/>) with either layout
    /// preferred. libtorch's oneDNN kernels get some of these wrong on some CPUs (NCHW on an AMD Zen 5 VM): what the project
    /// promises is not that oneDNN is right, but that the kernel it trains on is.
    /// </summary>
    [Theory]
    [InlineData(1, 50, 8, 8, 28, 3, 1, 1, 1)]
    [InlineData(2, 50, 8, 8, 28, 3, 1, 1, 1)]
    [InlineData(2, 64, 4, 3, 28, 3, 1, 1, 1)]
    [InlineData(2, 16, 16, 32, 16, 3, 2, 1, 1)]
    [InlineData(2, 16, 32, 32, 8, 3, 1, 1, 32)]
    [InlineData(2, 16, 16, 24, 8, 1, 1, 0, 1)]
    [InlineData(2, 8, 3, 16, 32, 3, 1, 1, 1)]
    public void ConvolutionInputGradientsAreRight(int threads, int n, int c, int o, int size, int k, int stride, int pad, int groups)
    {
        TorchRuntime.EnsureInitialized();
        torch.set_num_threads(threads);
        foreach (bool preferChannelsLast in new[] { false, true })
            InputGradientIsRight(preferChannelsLast, n, c, o, size, k, stride, pad, groups);
    }

    static void InputGradientIsRight(bool preferChannelsLast, int n, int c, int o, int size, int k, int stride, int pad, int groups)
    {
        using var scope = NewDisposeScope();
        int outSize = (size + 2 * pad - k) / stride + 1, perGroup = c / groups, outPerGroup = o / groups;
        var random = new Random(1);
        float[] Random(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] x = Random(n * c * size * size), w = Random(o * perGroup * k * k), r = Random(n * o * outSize * outSize);

        var input = tensor(x, [n, c, size, size]).requires_grad_(true);
        var weight = tensor(w, [o, perGroup, k, k]);
        long[] strides = [stride, stride], padding = [pad, pad], dilations = [1, 1];
        var signature = ConvKernels.Signature(input, weight, bias: false, strides, padding, dilations, groups);
        var kernel = ConvKernels.Choose(signature, preferChannelsLast);
        var output = ConvKernels.Run(kernel, signature, input, weight, null, strides, padding, dilations, groups);
        (output * tensor(r, [n, o, outSize, outSize])).sum().backward();
        var autograd = input.grad!.data<float>().ToArray();

        // d/dx of Σ y·r where y = conv(x, w): every output that reads x[b, ch, y, z] adds r × the weight it used.
        var expected = new double[x.Length];
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < o; oc++)
            {
                int g = oc / outPerGroup;
                for (int i = 0; i < outSize; i++)
                    for (int j = 0; j < outSize; j++)
                    {
                        double grad = r[((b * o + oc) * outSize + i) * outSize + j];
                        for (int ic = 0; ic < perGroup; ic++)
                            for (int ki = 0; ki < k; ki++)
                                for (int kj = 0; kj < k; kj++)
                                {
                                    int y = i * stride + ki - pad, z = j * stride + kj - pad;
                                    if (y < 0 || y >= size || z < 0 || z >= size) continue;
                                    expected[((b * c + g * perGroup + ic) * size + y) * size + z] += grad * w[((oc * perGroup + ic) * k + ki) * k + kj];
                                }
                    }
            }
        for (int e = 0; e < expected.Length; e++)
            Assert.True(Math.Abs(expected[e] - autograd[e]) < 1e-4 * (1 + Math.Abs(expected[e])), $"{ConvKernelPlan.Name(kernel)}, element {e}: expected {expected[e]}, got {autograd[e]}");
    }

    [Fact]
    public void OnlyTheOutputFolderCopyIsPatchedAndOnlyWhereTheSystemLacksTheVersion()
    {
        string patched = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(patched), $"libLibTorchSharp.so not found in {AppContext.BaseDirectory}");
        string original = Path.Combine(DotnetTool.PackageCache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

        bool systemHasVersion = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6" }
            .Where(File.Exists).Any(p => System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(p)).Contains("GLIBCXX_3.4.32\0"));
        Assert.Equal(systemHasVersion ? "none" : "WEAK", RequirementFlags(patched));
        if (File.Exists(original)) Assert.Equal("none", RequirementFlags(original)); // the NuGet cache is never edited
    }

    /// <summary>
    /// A program built without the fix (the NuGet cache's unpatched libLibTorchSharp.so beside the same libtorch) is told
    /// the real cause, from the dynamic loader's own error, not TorchSharp's "no reference to libtorch-cpu".
    /// </summary>
    [Fact]
    public void AnUnpatchedLibraryIsExplainedByTheLoadersOwnError()
    {
        string original = Path.Combine(DotnetTool.PackageCache, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(original), $"{original}: the restore put TorchSharp elsewhere");
        string folder = Directory.CreateTempSubdirectory("unpatched-").FullName;
        try
        {
            // The unpatched library, with libtorch's own libraries beside it (its RUNPATH is $ORIGIN).
            File.Copy(original, Path.Combine(folder, "libLibTorchSharp.so"));
            foreach (string library in Directory.GetFiles(AppContext.BaseDirectory, "lib*.so*").Where(f => Path.GetFileName(f) != "libLibTorchSharp.so"))
                File.CreateSymbolicLink(Path.Combine(folder, Path.GetFileName(library)), library);
            string? loader = null;
            try { System.Runtime.InteropServices.NativeLibrary.Free(System.Runtime.InteropServices.NativeLibrary.Load(Path.Combine(folder, "libLibTorchSharp.so"))); }
            catch (DllNotFoundException e) { loader = e.Message; }

            bool systemHasVersion = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6" }
                .Where(File.Exists).Any(p => System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(p)).Contains("GLIBCXX_3.4.32\0"));
            if (systemHasVersion)
            {
                Assert.Null(loader); // nothing to explain: the original loads
                return;
            }
            Assert.NotNull(loader);
            string message = TorchRuntime.ExplainLoadFailure("The type initializer for 'TorchSharp.torch' threw an exception.", loader);
            Assert.Contains("GLIBCXX_3.4.32", message);
            Assert.Contains("ParetoPrune.Optimizer package", message);
            Assert.Contains("gcc 13", message);
            Assert.DoesNotContain("strace", message); // the loader's own line, not .NET's advice around it
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        // Any other failure keeps TorchSharp's words and adds the loader's.
        Assert.Equal("TorchSharp could not load libtorch: boom (the dynamic loader says: libtorch_cpu.so: cannot open shared object file)",
                     TorchRuntime.ExplainLoadFailure("boom", "libtorch_cpu.so: cannot open shared object file"));
    }

    /// <summary>
    /// The flags of the GLIBCXX_3.4.32 requirement, read from the ELF file's version-needs section (Elf64 little-endian:
    /// section headers → SHT_GNU_verneed → its Vernaux entries, names in the linked string table), and cross-checked with
    /// readelf where binutils is installed (the base image lacks it, and the README's test command must pass there).
    /// </summary>
    static string RequirementFlags(string library)
    {
        byte[] elf = File.ReadAllBytes(library);
        Assert.True(elf.AsSpan(0, 4).SequenceEqual("\u007fELF"u8) && elf[4] == 2 && elf[5] == 1, $"{library} is not a little-endian 64-bit ELF file");
        ulong U64(long at) => BitConverter.ToUInt64(elf, (int)at);
        uint U32(long at) => BitConverter.ToUInt32(elf, (int)at);
        ushort U16(long at) => BitConverter.ToUInt16(elf, (int)at);
        long sections = (long)U64(0x28);
        int entrySize = U16(0x3A), count = U16(0x3C);
        long Header(int index) => sections + (long)index * entrySize;
        string Name(long table, uint offset) => System.Text.Encoding.ASCII.GetString(elf, (int)(table + offset), Array.IndexOf(elf, (byte)0, (int)(table + offset)) - (int)(table + offset));
        string? flags = null;
        for (int i = 0; i < count && flags is null; i++)
        {
            if (U32(Header(i) + 4) != 0x6ffffffe) continue; // SHT_GNU_verneed
            long strings = (long)U64(Header((int)U32(Header(i) + 0x28)) + 0x18); // sh_link's section: its sh_offset
            long need = (long)U64(Header(i) + 0x18);
            for (uint needs = U32(Header(i) + 0x2C); needs > 0 && flags is null; needs--) // sh_info: the number of Verneed entries
            {
                long aux = need + U32(need + 8);
                for (int auxes = U16(need + 2); auxes > 0; auxes--)
                {
                    if (Name(strings, U32(aux + 8)) == "GLIBCXX_3.4.32")
                    {
                        ushort value = U16(aux + 4);
                        flags = value == 0 ? "none" : value == 2 ? "WEAK" : $"0x{value:x}";
                        break;
                    }
                    aux += U32(aux + 12);
                }
                need += U32(need + 12);
            }
        }
        Assert.NotNull(flags);
        if (ReadElf(library) is { } readelf) Assert.Equal(readelf, flags);
        return flags;
    }

    /// <summary>What readelf reports for the requirement, or null where binutils is not installed.</summary>
    static string? ReadElf(string library)
    {
        var start = new System.Diagnostics.ProcessStartInfo("readelf", ["-V", "-W", library]) { RedirectStandardOutput = true };
        System.Diagnostics.Process process;
        try { process = System.Diagnostics.Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception) { return null; }
        using (process)
        {
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            var line = output.Split('\n').Single(l => l.Contains("Name: GLIBCXX_3.4.32"));
            return System.Text.RegularExpressions.Regex.Match(line, @"Flags: (\w+)").Groups[1].Value;
        }
    }
}
