using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ParetoPrune.Objectives.Tests.Onnx;

/// <summary>The PyTorch-exported models of tests/fixtures/onnx, with their independently counted expectations.</summary>
static class Fixtures
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "fixtures", "onnx");

    public static IEnumerable<object[]> Names() =>
        System.IO.Directory.GetFiles(Directory, "*.expected.json").Select(f => Path.GetFileName(f)[..^".expected.json".Length]).Order().Select(n => new object[] { n });

    public static string Model(string name) => Path.Combine(Directory, name + ".onnx");

    public static JsonElement Expected(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, name + ".expected.json"))).RootElement;

    public static float[] ReadFloats(string file)
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(Directory, file));
        var values = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
        return values;
    }

    public static long[] Shape(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();
}

/// <summary>ONNX Runtime as the independent oracle: runs model bytes and returns every output with its shape.</summary>
static class Ort
{
    public static Dictionary<string, (float[] Values, long[] Shape)> Run(byte[] model, string inputName, float[] input, long[] shape)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        using var session = new InferenceSession(model, options);
        var tensor = new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray());
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(inputName, tensor)]);
        var outputs = new Dictionary<string, (float[], long[])>();
        foreach (var result in results)
        {
            if (result.Value is not Tensor<float> t) continue; // int64 / bool side outputs
            outputs[result.Name] = (t.ToArray(), t.Dimensions.ToArray().Select(d => (long)d).ToArray());
        }
        return outputs;
    }

    public static void AssertClose(float[] expected, float[] actual, double relative, double absolute = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double tolerance = absolute + relative * Math.Abs(expected[i]);
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}
