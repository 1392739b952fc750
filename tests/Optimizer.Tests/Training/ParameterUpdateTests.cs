using ParetoPrune.Optimizer.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>
/// The optimiser step against the update rules written out element by element (PyTorch's SGD and AdamW), and against
/// itself with collections running on other threads: TorchSharp's own SGD, stepped the same way, throws
/// "Expected false to be true" (a freed Scalar) on about one step in seventy.
/// </summary>
public class ParameterUpdateTests
{
    static readonly long[][] Shapes = [[8, 3, 3, 3], [8], [10, 32], [10]];
    static readonly double[] Rates = [0.1, 0.05, 0.02, 0.08, 0.01];

    static float[] Gaussian(Random random, int count) =>
        Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();

    static int Size(long[] shape) => (int)shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Initial values and one gradient per step for each parameter, from a seed.</summary>
    static (float[][] Initial, float[][][] Gradients) Problem(int seed, long[][]? shapes = null)
    {
        var random = new Random(seed);
        var initial = (shapes ?? Shapes).Select(s => Gaussian(random, Size(s))).ToArray();
        var gradients = Rates.Select(_ => (shapes ?? Shapes).Select(s => Gaussian(random, Size(s))).ToArray()).ToArray();
        return (initial, gradients);
    }

    static float[][] RunSteps(TrainingOptions options, float[][] initial, float[][][] gradients, long[][]? shapes = null)
    {
        shapes ??= Shapes;
        using var scope = NewDisposeScope();
        var parameters = shapes.Select((s, i) => new Parameter(tensor(initial[i], s))).ToList();
        using var update = ParameterUpdate.For(parameters, options);
        for (int step = 0; step < gradients.Length; step++)
        {
            using var stepScope = NewDisposeScope();
            for (int i = 0; i < parameters.Count; i++) parameters[i].grad = tensor(gradients[step][i], shapes[i]);
            update.LearningRate = Rates[step % Rates.Length];
            update.Step();
        }
        return parameters.Select(p => p.data<float>().ToArray()).ToArray();
    }

    static void AssertClose(double[][] expected, float[][] actual)
    {
        for (int i = 0; i < expected.Length; i++)
            for (int k = 0; k < expected[i].Length; k++)
                Assert.True(Math.Abs(expected[i][k] - actual[i][k]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i][k])),
                            $"parameter {i}, entry {k}: expected {expected[i][k]}, got {actual[i][k]}");
    }

    [Theory]
    [InlineData(0.9, true, 5e-4)]
    [InlineData(0.9, false, 0.0)]
    [InlineData(0.0, false, 1e-2)]
    public void SgdFollowsPyTorchsRule(double momentum, bool nesterov, double weightDecay)
    {
        var (initial, gradients) = Problem(seed: 1);
        var options = new TrainingOptions { Optimizer = OptimizerKind.Sgd, Momentum = momentum, Nesterov = nesterov, WeightDecay = weightDecay };
        var actual = RunSteps(options, initial, gradients);

        // g ← g + λp; b ← g (first step), b ← μb + g; g ← g + μb (Nesterov) or b; p ← p − ηg
        var expected = new double[initial.Length][];
        for (int i = 0; i < initial.Length; i++)
        {
            var p = initial[i].Select(v => (double)v).ToArray();
            var buffer = new double[p.Length];
            for (int step = 0; step < gradients.Length; step++)
                for (int k = 0; k < p.Length; k++)
                {
                    double g = gradients[step][i][k] + weightDecay * p[k];
                    if (momentum != 0)
                    {
                        buffer[k] = step == 0 ? g : momentum * buffer[k] + g;
                        g = nesterov ? g + momentum * buffer[k] : buffer[k];
                    }
                    p[k] -= Rates[step] * g;
                }
            expected[i] = p;
        }
        AssertClose(expected, actual);
    }

    [Fact]
    public void AdamWFollowsPyTorchsRule()
    {
        var (initial, gradients) = Problem(seed: 2);
        const double weightDecay = 1e-2, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
        var actual = RunSteps(new TrainingOptions { Optimizer = OptimizerKind.AdamW, WeightDecay = weightDecay }, initial, gradients);

        var expected = new double[initial.Length][];
        for (int i = 0; i < initial.Length; i++)
        {
            var p = initial[i].Select(v => (double)v).ToArray();
            var m = new double[p.Length];
            var v = new double[p.Length];
            for (int step = 0; step < gradients.Length; step++)
            {
                double rate = Rates[step];
                int t = step + 1;
                for (int k = 0; k < p.Length; k++)
                {
                    double g = gradients[step][i][k];
                    p[k] *= 1 - rate * weightDecay;
                    m[k] = beta1 * m[k] + (1 - beta1) * g;
                    v[k] = beta2 * v[k] + (1 - beta2) * g * g;
                    double mHat = m[k] / (1 - Math.Pow(beta1, t));
                    p[k] -= rate * mHat / (Math.Sqrt(v[k]) / Math.Sqrt(1 - Math.Pow(beta2, t)) + epsilon);
                }
            }
            expected[i] = p;
        }
        AssertClose(expected, actual);
    }

    [Fact]
    public void ParametersWithoutGradientsAreLeftAlone()
    {
        using var scope = NewDisposeScope();
        var frozen = new Parameter(ones(4));
        var trained = new Parameter(ones(4));
        using var update = ParameterUpdate.For([frozen, trained], new TrainingOptions { LearningRate = 0.5, Momentum = 0, WeightDecay = 0 });
        trained.grad = ones(4);
        update.Step();
        Assert.All(frozen.data<float>().ToArray(), v => Assert.Equal(1f, v));
        Assert.All(trained.data<float>().ToArray(), v => Assert.Equal(0.5f, v));
    }

    [Fact]
    public void StepsAreExactWhileOtherThreadsCollect()
    {
        var options = new TrainingOptions { Optimizer = OptimizerKind.Sgd, Momentum = 0.9, Nesterov = true, WeightDecay = 5e-4 };
        var shapes = Enumerable.Range(0, 40).Select(i => new long[] { i % 5 == 0 ? 1024 : 16 }).ToArray();
        var (initial, gradients) = Problem(seed: 3, shapes);
        var repeated = Enumerable.Repeat(gradients, 200).SelectMany(g => g).ToArray(); // 1 000 steps of 40 parameters
        var quiet = RunSteps(options, initial, repeated, shapes);

        bool stop = false;
        var collector = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        });
        collector.Start();
        var results = new float[3][][];
        var failures = new List<Exception>();
        var workers = Enumerable.Range(0, results.Length).Select(w => new Thread(() =>
        {
            try { results[w] = RunSteps(options, initial, repeated, shapes); }
            catch (Exception e) { lock (failures) failures.Add(e); }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        Volatile.Write(ref stop, true);
        collector.Join();

        Assert.Empty(failures);
        foreach (var result in results)
            for (int i = 0; i < quiet.Length; i++) Assert.Equal(quiet[i], result[i]);
    }
}
