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
    /// The input gradient of a convolution against a hand computation, at the sizes where libtorch's oneDNN kernel
    /// returned wrong values (and different ones on two threads) before <see cref="TorchRuntime"/> switched it off.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void ConvolutionInputGradientsAreRightOnAnyNumberOfThreads(int threads)
    {
        ParetoPrune.Optimizer.Training.TorchRuntime.EnsureInitialized();
        torch.set_num_threads(threads);
        using var scope = NewDisposeScope();
        const int N = 50, C = 8, O = 8, H = 28, W = 28, K = 3;
        var random = new Random(1);
        float[] Random(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] x = Random(N * C * H * W), w = Random(O * C * K * K), r = Random(N * O * H * W);

        var input = tensor(x, [N, C, H, W]).requires_grad_(true);
        var output = nn.functional.conv2d(input, tensor(w, [O, C, K, K]), padding: [1, 1]);
        (output * tensor(r, [N, O, H, W])).sum().backward();
        var autograd = input.grad!.data<float>().ToArray();

        // d/dx of Σ y·r where y = conv(x, w), padding 1: Σ over outputs that read x[n,c,i,j].
        var expected = new double[x.Length];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < O; o++)
                for (int i = 0; i < H; i++)
                    for (int j = 0; j < W; j++)
                    {
                        double g = r[((n * O + o) * H + i) * W + j];
                        for (int c = 0; c < C; c++)
                            for (int ki = 0; ki < K; ki++)
                                for (int kj = 0; kj < K; kj++)
                                {
                                    int y = i + ki - 1, z = j + kj - 1;
                                    if (y < 0 || y >= H || z < 0 || z >= W) continue;
                                    expected[((n * C + c) * H + y) * W + z] += g * w[((o * C + c) * K + ki) * K + kj];
                                }
                    }
        for (int k = 0; k < expected.Length; k++)
            Assert.True(Math.Abs(expected[k] - autograd[k]) < 1e-4 * (1 + Math.Abs(expected[k])), $"element {k}: expected {expected[k]}, got {autograd[k]}");
    }

    [Fact]
    public void OnlyTheOutputFolderCopyIsPatchedAndOnlyWhereTheSystemLacksTheVersion()
    {
        string patched = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(patched), $"libLibTorchSharp.so not found in {AppContext.BaseDirectory}");
        string nugetRoot = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string original = Path.Combine(nugetRoot, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");

        bool systemHasVersion = new[] { "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib64/libstdc++.so.6" }
            .Where(File.Exists).Any(p => System.Text.Encoding.ASCII.GetString(File.ReadAllBytes(p)).Contains("GLIBCXX_3.4.32\0"));
        Assert.Equal(systemHasVersion ? "none" : "WEAK", RequirementFlags(patched));
        if (File.Exists(original)) Assert.Equal("none", RequirementFlags(original)); // the NuGet cache is never edited
    }

    /// <summary>The flags readelf reports for the GLIBCXX_3.4.32 requirement (binutils is on every Debian build machine).</summary>
    static string RequirementFlags(string library)
    {
        var start = new System.Diagnostics.ProcessStartInfo("readelf", ["-V", "-W", library]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var line = output.Split('\n').Single(l => l.Contains("Name: GLIBCXX_3.4.32"));
        return System.Text.RegularExpressions.Regex.Match(line, @"Flags: (\w+)").Groups[1].Value;
    }
}
