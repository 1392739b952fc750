using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Tests.Onnx;

/// <summary>Models whose weights live in a file beside them (ONNX external data), as exporters write large models.</summary>
public sealed class ExternalDataTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("external-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>The fixture with every initializer moved into <paramref name="dataFile"/> (one after another, as onnx.save writes them).</summary>
    string Externalised(string dataFile, string location)
    {
        var model = OnnxModel.Load(Fixtures.Model("plain_cnn_bn"));
        using var data = File.Create(Path.Combine(directory, dataFile));
        data.Write(new byte[100]); // the first tensor not at offset 0
        foreach (var tensor in model.Graph.Initializer.Where(t => t.RawData.Length > 0))
        {
            long offset = data.Position;
            tensor.RawData.WriteTo(data);
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString() });
            tensor.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = tensor.RawData.Length.ToString() });
            tensor.DataLocation = TensorProto.Types.DataLocation.External;
            tensor.RawData = ByteString.Empty;
        }
        string path = Path.Combine(directory, "model.onnx");
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    [Fact]
    public void LoadingReadsTheDataSoTheModelIsWholeAndRunsAsOnnxRuntimeRunsTheFile()
    {
        string path = Externalised("weights.bin", "weights.bin");
        var loaded = OnnxModel.Load(path);
        Assert.Equal(OnnxModel.Load(Fixtures.Model("plain_cnn_bn")), loaded); // every tensor back in place
        Assert.All(loaded.Graph.Initializer, t => Assert.Empty(t.ExternalData));

        // ONNX Runtime reads the external file itself from the path; the loaded model runs from bytes alone. Same outputs.
        var expected = Fixtures.Expected("plain_cnn_bn");
        var shape = Fixtures.Shape(expected.GetProperty("input_shape")).Select(d => (int)d).ToArray();
        var input = new DenseTensor<float>(Fixtures.ReadFloats("plain_cnn_bn.inputs.bin")[..shape.Aggregate(1, (a, b) => a * b)], shape);
        float[] Run(InferenceSession session)
        {
            using var results = session.Run([NamedOnnxValue.CreateFromTensor(session.InputMetadata.Keys.Single(), input)]);
            return results.First().AsEnumerable<float>().ToArray();
        }
        using var fromFile = new InferenceSession(path);
        using var fromLoaded = new InferenceSession(OnnxModel.ToBytes(loaded));
        Assert.Equal(Run(fromFile), Run(fromLoaded));
        Assert.Equal(ModelCost.Analyze(OnnxModel.Load(Fixtures.Model("plain_cnn_bn"))).Macs, ModelCost.Analyze(loaded).Macs);
    }

    [Theory]
    [InlineData("../outside.bin", "outside the model's folder")]
    [InlineData("/etc/passwd", "absolute path")]
    [InlineData("missing.bin", "does not exist")]
    [InlineData("short.bin", "which holds")]
    public void DataThatCannotBeReadSafelyIsRefusedNamingTheTensor(string location, string expected)
    {
        File.WriteAllBytes(Path.Combine(directory, "short.bin"), new byte[10]);
        string path = Externalised("weights.bin", location);
        var error = Assert.Throws<OnnxModelException>(() => OnnxModel.Load(path));
        Assert.Contains(path, error.Message);
        Assert.Contains("tensor '", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void AModelPastTheSizeLimitIsSavedWithItsWeightsBesideItAndReadsBackWhole()
    {
        var model = OnnxModel.Load(Fixtures.Model("plain_cnn_bn"));
        string path = Path.Combine(directory, "large.onnx");
        OnnxModel.Save(model, path, externalDataAbove: 1000); // a 17 kB model stands in for one past 2 GB
        Assert.True(File.Exists(path + ".data"));
        Assert.True(new FileInfo(path).Length < 4000, "the weights left the model file");
        Assert.Equal(model, OnnxModel.Load(path)); // every tensor back in place

        var expected = Fixtures.Expected("plain_cnn_bn");
        var input = Fixtures.ReadFloats(expected.GetProperty("inputs_file").GetString()!);
        var shape = Fixtures.Shape(expected.GetProperty("test_inputs_shape"));
        using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL }; // as Ort.Run
        using var session = new InferenceSession(path, options); // ONNX Runtime reads the data file itself
        using var results = session.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(input, shape.Select(d => (int)d).ToArray()))]);
        Assert.Equal(Ort.Run(OnnxModel.ToBytes(model), "input", input, shape)["output"].Values, results.First().AsTensor<float>().ToArray());

        OnnxModel.Save(model, path); // below the limit: one file again
        Assert.Equal(model, OnnxModel.Load(path));
    }
}
