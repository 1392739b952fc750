using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Optimizer.Tests;

/// <summary>Models for tests (PyTorch-exported fixtures, small builder configurations) and ONNX Runtime as the oracle.</summary>
static class TestModels
{
    public static string FixtureDirectory => Path.Combine(AppContext.BaseDirectory, "fixtures", "onnx");

    public static ModelProto Fixture(string name) => OnnxModel.Load(Path.Combine(FixtureDirectory, name + ".onnx"));

    public static IEnumerable<string> FixtureNames() =>
        Directory.GetFiles(FixtureDirectory, "*.onnx").Select(f => Path.GetFileNameWithoutExtension(f)).Order();

    /// <summary>Every PyTorch fixture, and small configurations of the builders (with non-trivial BN statistics).</summary>
    public static IEnumerable<string> AllNames() =>
        FixtureNames().Concat(["simplecnn", "vgg11", "resnet20", "resnet20-b", "resnet18", "mobilenetv2", "op-examples"]);

    public static ModelProto Load(string name) => name switch
    {
        "simplecnn" => WithRandomBatchNorm(Architectures.SimpleCnn(1, 12, 10, [8, 8, 16, 16], seed: 1)),
        "vgg11" => WithRandomBatchNorm(Architectures.Vgg(11, 3, 32, 10, hidden: [32], seed: 1)),
        "resnet20" => WithRandomBatchNorm(Architectures.CifarResNet(20, 3, 16, 10, seed: 1)),
        "resnet20-b" => WithRandomBatchNorm(Architectures.CifarResNet(20, 3, 16, 10, Architectures.Shortcut.B, seed: 1)),
        "resnet18" => WithRandomBatchNorm(Architectures.ImageNetResNet(18, 3, 32, 10, seed: 1)),
        "mobilenetv2" => WithRandomBatchNorm(Architectures.MobileNetV2(3, 32, 10, 0.35, seed: 1)),
        "op-examples" => OpExamples(),
        _ => Fixture(name),
    };

    /// <summary>The registered ops no exporter fixture runs through the checks (Sub, Tanh, Identity of an activation, Gelu at
    /// opset 20, GlobalMaxPool, LogSoftmax), in one
    /// small network, so every op runs through the same fixture checks (counts, pruning, training engine).</summary>
    public static ModelProto OpExamples()
    {
        var random = new Random(5);
        float[] Values(int count, double scale) => Enumerable.Range(0, count).Select(_ => (float)((random.NextDouble() * 2 - 1) * scale)).ToArray();
        var b = new OnnxModelBuilder("op-examples", 20);
        string x = b.Input("input", -1, 3, 8, 8);
        x = b.Node("Sub", [x, b.Initializer("mean", [1, 3, 1, 1], [0.1f, 0.2f, 0.3f])], "normalise");
        x = b.Node("Conv", [x, b.Initializer("w1", [6, 3, 3, 3], Values(162, 0.5)), b.Initializer("b1", [6], Values(6, 0.1))], "conv1",
                   ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Tanh", [x], "tanh");
        x = b.Node("Identity", [x], "identity");
        x = b.Node("Conv", [x, b.Initializer("w2", [8, 6, 3, 3], Values(432, 0.4)), b.Initializer("b2", [8], Values(8, 0.1))], "conv2",
                   ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Gelu", [x], "gelu");
        x = b.Node("GlobalMaxPool", [x], "pool");
        x = b.Node("Flatten", [x], "flatten");
        x = b.Node("Gemm", [x, b.Initializer("fc.w", [4, 8], Values(32, 0.5)), b.Initializer("fc.b", [4], Values(4, 0.1))], "fc", ("transB", 1L));
        x = b.Node("LogSoftmax", [x], "log_softmax", ("axis", 1L));
        b.Output(x, -1, 4);
        return b.Build();
    }

    /// <summary>Non-trivial BatchNormalization (γ, β, mean, var random) so a zeroed channel does not stay zero after BN.</summary>
    public static ModelProto WithRandomBatchNorm(ModelProto model, int seed = 7)
    {
        var random = new Random(seed);
        var copy = model.Clone();
        var bnInputs = copy.Graph.Node.Where(n => n.OpType == "BatchNormalization").SelectMany(n => n.Input.Skip(1).Select((name, k) => (name, k))).ToList();
        for (int i = 0; i < copy.Graph.Initializer.Count; i++)
        {
            var tensor = copy.Graph.Initializer[i];
            var match = bnInputs.FirstOrDefault(b => b.name == tensor.Name);
            if (match.name is null) continue;
            var values = OnnxTensors.ReadFloats(tensor);
            for (int v = 0; v < values.Length; v++)
                values[v] = match.k switch
                {
                    0 => (float)(0.5 + random.NextDouble()),          // γ
                    1 => (float)(random.NextDouble() - 0.5),          // β
                    2 => (float)(random.NextDouble() - 0.5) * 0.2f,  // running mean
                    _ => (float)(0.5 + random.NextDouble()),          // running variance
                };
            copy.Graph.Initializer[i] = OnnxTensors.CreateFloat(tensor.Name, tensor.Dims.ToArray(), values);
        }
        return copy;
    }

    public static float[] RandomInput(long[] shape, int seed = 3)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, (int)shape.Aggregate(1L, (a, b) => a * b)).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    public static long[] InputShape(ModelProto model, int batch = 2)
    {
        var dims = model.Graph.Input[0].Type.TensorType.Shape.Dim;
        return dims.Select((d, i) => i == 0 ? batch : d.DimValue).ToArray();
    }

    public static float[] Run(ModelProto model, float[] input, long[] shape)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(OnnxModel.ToBytes(model), options);
        var tensor = new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.First(), tensor)]);
        return results.First().AsTensor<float>().ToArray();
    }

    public static void AssertClose(float[] expected, float[] actual, double relative = 1e-4, double absolute = 1e-5)
    {
        Assert.Equal(expected.Length, actual.Length);
        double scale = expected.Max(v => Math.Abs(v));
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = absolute + relative * Math.Max(Math.Abs(expected[i]), scale);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
