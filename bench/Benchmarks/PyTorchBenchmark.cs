using System.Diagnostics;
using System.Text.Json;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// <c>training-pytorch [ROUNDS]</c>: training images/s of the ONNX graph module (with the kernels the self-check chose)
/// against PyTorch on the same networks (bench/pytorch/train_throughput.py, Debian's python3-torch), in its default
/// NCHW layout and in channels-last (its own CPU speed recipe), interleaved round by round in one run: 10 steps each per round, batch 128 of 1×28×28, SGD, 2 threads. Also each as a fraction of this
/// machine's measured matrix-multiply peak (a training step counted as 3 × 2 × MACs FLOPs). Skipped, with the reason,
/// where python3-torch is missing.
/// </summary>
static class PyTorchBenchmark
{
    const string Script = "bench/pytorch/train_throughput.py";
    const int Steps = 10;

    public static void Run(int rounds)
    {
        int threads = Environment.ProcessorCount;
        if (Python("simplecnn", 1, threads) is not { } probe)
        {
            Console.WriteLine("skipped: /usr/bin/python3 cannot import torch (apt-get install python3-torch) or " + Script + " is missing");
            return;
        }
        var kernels = TorchRuntime.UseKernelsFor(null, threads);
        torch.set_num_threads(threads);
        double peak = MatmulPeak();
        Console.WriteLine($"kernels: {kernels}; PyTorch {probe.GetProperty("torch").GetString()} (mkldnn {probe.GetProperty("mkldnn").GetBoolean()}); " +
                          $"{threads} threads; {rounds} interleaved rounds × {Steps} steps after 3 warm-up steps; matmul peak {peak / 1e9:0} GFLOP/s (2048², float32)\n");
        Console.WriteLine("| network | MACs / image | ParetoPrune (images/s, median [range]) | PyTorch NCHW (default) | PyTorch channels-last | ratio to NCHW | ratio to channels-last | " +
                          "ParetoPrune % of peak | PyTorch best % of peak |");
        Console.WriteLine("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
        foreach (var (label, name, model) in new (string, string, ModelProto)[]
                 {
                     ("SimpleCnn", "simplecnn", Architectures.SimpleCnn(1, 28, 10, seed: 1)),
                     ("ResNet-20", "resnet20", Architectures.CifarResNet(20, 1, 28, 10, seed: 1)),
                     ("MobileNetV2 0.5", "mobilenetv2-0.5", Architectures.MobileNetV2(1, 28, 10, 0.5, seed: 1)),
                 })
        {
            var cost = ModelCost.Analyze(model);
            long macs = cost.Macs;
            long theirParams = Python(name, 1, threads)?.GetProperty("params").GetInt64() ?? -1;
            if (theirParams != cost.Params)
                throw new InvalidOperationException($"{Script} {name} has {theirParams} parameters, the builder's network {cost.Params}: not the same network");
            using var module = new OnnxModule(model);
            var x = randn(128, 1, 28, 28);
            var y = randint(0, 10, [128]);
            TrainingBenchmark.Steps(module, x, y, 3);
            var ours = new List<double>();
            var nchw = new List<double>();
            var channelsLast = new List<double>();
            double Theirs(string layout) => (Python(name, Steps, threads, layout)
                ?? throw new InvalidOperationException($"{Script} {name} failed (run it by hand to see why)")).GetProperty("images_per_second").GetDouble();
            for (int round = 0; round < rounds; round++)
            {
                ours.Add(Steps * 128 / TrainingBenchmark.Steps(module, x, y, Steps));
                nchw.Add(Theirs("nchw"));
                channelsLast.Add(Theirs("channels_last"));
            }
            double a = Median(ours), b = Median(nchw), c = Median(channelsLast);
            string Cell(List<double> v) => $"{Median(v):0} [{v.Min():0}–{v.Max():0}]";
            Console.WriteLine($"| {label} | {macs / 1e6:0.0} M | {Cell(ours)} | {Cell(nchw)} | {Cell(channelsLast)} | {a / b:0.00} | {a / c:0.00} | " +
                              $"{100 * a * 6 * macs / peak:0.0} % | {100 * Math.Max(b, c) * 6 * macs / peak:0.0} % |");
        }
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    /// <summary>FLOP/s of a 2048² float32 matrix product on this machine's threads: the yardstick for "how much of the machine".</summary>
    static double MatmulPeak()
    {
        using var a = randn(2048, 2048);
        using var b = randn(2048, 2048);
        for (int i = 0; i < 2; i++) matmul(a, b).Dispose();
        var watch = Stopwatch.StartNew();
        for (int i = 0; i < 10; i++) matmul(a, b).Dispose();
        return 10 * 2.0 * 2048 * 2048 * 2048 / watch.Elapsed.TotalSeconds;
    }

    static JsonElement? Python(string network, int steps, int threads, string layout = "nchw")
    {
        if (!File.Exists("/usr/bin/python3") || !File.Exists(Script)) return null;
        var start = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Script, network, steps.ToString(), threads.ToString(), layout }) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0 ? JsonDocument.Parse(output).RootElement.Clone() : null;
    }
}
