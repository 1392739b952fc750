using Microsoft.ML.OnnxRuntime;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Training;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Optimizer.Tests.Quantization;

/// <summary>
/// INT8 QDQ quantisation checked against ONNX Runtime: the quantized file runs, ONNX Runtime turns it into integer
/// kernels, it classifies like the float model, and every stored INT8 weight dequantizes to within half a step of the
/// float weight it replaces.
/// </summary>
public sealed class Int8QuantizerTests
{
    static readonly TrainTest Sample = DatasetCatalog.LoadEmbeddedSample();

    static ModelProto Shipped(string name) => OnnxModel.Load(Repository.File("models", name));

    [Theory]
    [InlineData("simplecnn-fashion-mnist.onnx", CalibrationMethod.MinMax)]
    [InlineData("resnet20-fashion-mnist.onnx", CalibrationMethod.MinMax)]
    [InlineData("resnet20-fashion-mnist.onnx", CalibrationMethod.Percentile)]
    public void AShippedModelQuantizedRunsOnIntegerKernelsAboutFourTimesSmallerAndKeepsItsAccuracy(string name, CalibrationMethod calibration)
    {
        var model = Shipped(name);
        var quantized = Int8Quantizer.Quantize(model, Sample.Train, new QuantizationOptions { Calibration = calibration, CalibrationImages = 200 });

        var test = Sample.Test.Take([.. Enumerable.Range(0, 500)]);
        double floatAccuracy = Accuracy(ModelSurgery.FoldBatchNorm(model), test), int8Accuracy = Accuracy(quantized.Model, test);
        Assert.True(Math.Abs(floatAccuracy - int8Accuracy) <= 0.01, $"float {floatAccuracy:P1}, INT8 {int8Accuracy:P1} on 500 test images");

        // Weights are a byte instead of four; biases, scales and zero points are what is left.
        double ratio = (double)OnnxModel.ToBytes(ModelSurgery.FoldBatchNorm(model)).Length / OnnxModel.ToBytes(quantized.Model).Length;
        Assert.InRange(ratio, 3.4, 4.05);

        // ONNX Runtime fuses every quantized convolution into an integer kernel; no float Conv is left.
        var optimized = Optimized(quantized.Model);
        int convolutions = model.Graph.Node.Count(n => n.OpType == "Conv");
        Assert.Equal(convolutions, optimized.Graph.Node.Count(n => n.OpType == "QLinearConv"));
        Assert.DoesNotContain(optimized.Graph.Node, n => n.OpType is "Conv" or "FusedConv");
        Assert.Equal(model.Graph.Node.Count(n => n.OpType is "Conv" or "Gemm"), quantized.Report.QuantizedNodes.Count);
        Assert.Empty(quantized.Report.FloatNodes);
        Assert.Contains(calibration == CalibrationMethod.MinMax ? "min/max on 200 training images" : "99.99th percentile",
                        OnnxModel.GetMetadata(quantized.Model, Int8Quantizer.MetadataKey));
    }

    [Fact]
    public void EveryInt8WeightDequantizesToWithinHalfAStepOfTheFloatWeightPerChannel()
    {
        var folded = ModelSurgery.FoldBatchNorm(Shipped("simplecnn-fashion-mnist.onnx"));
        var quantized = Int8Quantizer.Quantize(folded, Sample.Train, new QuantizationOptions { CalibrationImages = 64 }).Model;
        var floats = new OnnxGraph(folded);
        var graph = new OnnxGraph(quantized);
        int checkedWeights = 0;
        foreach (var layer in floats.Nodes.Where(n => n.OpType is "Conv" or "Gemm"))
        {
            var weight = OnnxTensors.ReadFloats(floats.Constant(layer.Input[1])!);
            var dq = graph.Producer(graph.Nodes.Single(n => n.Name == layer.Name).Input[1])!;
            Assert.Equal("DequantizeLinear", dq.OpType);
            var values = graph.Constant(dq.Input[0])!;
            Assert.Equal((int)TensorProto.Types.DataType.Int8, values.DataType);
            var q = values.RawData.ToByteArray();
            var scales = OnnxTensors.ReadFloats(graph.Constant(dq.Input[1])!);
            int axis = (int)dq.GetInt("axis", 1);
            long inner = values.Dims.Skip(axis + 1).Aggregate(1L, (a, d) => a * d);
            Assert.Equal(values.Dims[axis], scales.Length);
            for (int i = 0; i < weight.Length; i++)
            {
                float scale = scales[(int)(i / inner % scales.Length)];
                Assert.True(Math.Abs((sbyte)q[i] * scale - weight[i]) <= scale / 2 + 1e-7f, $"{layer.Name}[{i}]: {(sbyte)q[i]} × {scale} for {weight[i]}");
            }
            // Symmetric: the largest weight of each channel uses the full ±127.
            for (int c = 0; c < scales.Length; c++)
                Assert.Equal(127, Enumerable.Range(0, weight.Length).Where(i => i / inner % scales.Length == c).Max(i => Math.Abs((int)(sbyte)q[i])));
            checkedWeights++;
        }
        Assert.Equal(5, checkedWeights); // four convolutions and the classifier
    }

    [Fact]
    public void AQuantizedModelHasTheSameParametersAtOneBytePerWeightAndItsMacsOnInt8Kernels()
    {
        var folded = ModelSurgery.FoldBatchNorm(Shipped("simplecnn-fashion-mnist.onnx"));
        var quantized = Int8Quantizer.Quantize(folded, Sample.Train, new QuantizationOptions { CalibrationImages = 16 }).Model;
        ModelCost before = ModelCost.Analyze(folded), after = ModelCost.Analyze(quantized);
        Assert.Equal(before.Macs, after.Macs);
        Assert.Equal(before.Params, after.Params);
        Assert.Equal((0L, after.Macs), (before.Int8Macs, after.Int8Macs));
        long biases = folded.Graph.Node.Where(n => n.OpType is "Conv" or "Gemm")
                            .Sum(n => OnnxTensors.ElementCount(folded.Graph.Initializer.Single(i => i.Name == n.Input[2])));
        Assert.Equal(4 * before.Params, before.ParamBytes);
        // Loading a saved INT8 model keeps its weights INT8 (the loader folds constant subgraphs, but not DequantizeLinear).
        string file = Path.Combine(Path.GetTempPath(), $"int8-{Guid.NewGuid():N}.onnx");
        OnnxModel.Save(quantized, file);
        try { Assert.Equal(after.ParamBytes, ModelCost.Analyze(OnnxModel.Load(file)).ParamBytes); } finally { File.Delete(file); }
        Assert.Equal(before.Params - biases + 4 * biases, after.ParamBytes); // INT8 weights, INT32 biases

        // The Pi profile estimates INT8 layers at its integer rate, with the same operators as the float model (the Relus
        // folded into the quantization still count: fused on a device either way; Q/DQ pairs are the integer kernels' own).
        var pi = Devices.DeviceProfile.RaspberryPi4B;
        var (floatCounts, int8Counts) = (DeviceCounts.Of(folded, before), DeviceCounts.Of(quantized, after));
        Assert.Equal(floatCounts.Layers, int8Counts.Layers);
        double expected = pi.FixedMs + pi.Int8MsPerGmac!.Value * after.Macs / 1e9 + pi.MsPerMegabyte * after.ParamBytes / 1e6 + pi.MsPerLayer * int8Counts.Layers;
        Assert.Equal(expected, pi.EstimateLatencyMs(int8Counts), 9);
        Assert.True(pi.EstimateLatencyMs(int8Counts) < pi.EstimateLatencyMs(floatCounts));
    }

    /// <summary>One convolution and its Relu, with weights and inputs chosen so that half the outputs are negative: the Relu is
    /// folded into the output's quantization, negatives come out exactly 0, and the rest within a few steps.</summary>
    [Fact]
    public void AReluAfterAConvolutionIsFoldedIntoItsQuantizationAndStillClampsAtZero()
    {
        var random = new Random(4);
        var b = new OnnxModelBuilder("conv-relu", 13);
        string x = b.Input("input", -1, 1, 8, 8);
        x = b.Node("Conv", [x, b.Initializer("w", [4, 1, 3, 3], Values(random, 36)), b.Initializer("b", [4], Values(random, 4))], "conv",
                   ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Relu", [x], "relu");
        x = b.Node("GlobalAveragePool", [x], "pool");
        b.Output(x, -1, 4, 1, 1);
        var model = b.Build();
        var images = new Dataset(Values(random, 64 * 64).Select(v => v + 0.5f).ToArray(), new int[64], ["a"], 1, 8, 8, "random");

        var quantized = Int8Quantizer.Quantize(model, images, new QuantizationOptions { CalibrationImages = 64 });
        Assert.DoesNotContain(quantized.Model.Graph.Node, n => n.OpType == "Relu");
        Assert.Equal(1, quantized.Report.FoldedActivations);

        // The convolution's output before the Relu, and the Relu's after it, against what the quantized model passes on.
        var pixels = images.Pixels;
        var preActivation = Run(WithOutput(model, "conv"), pixels, [64, 1, 8, 8], 1);
        var expected = Run(WithOutput(model, "relu"), pixels, [64, 1, 8, 8], 1);
        var actual = Run(WithOutput(quantized.Model, "relu_dequantized"), pixels, [64, 1, 8, 8], 1);
        float step = expected.Max() / 255;
        int negatives = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            // Clearly negative before the Relu: saturated to exactly 0 (near 0, INT8 rounding may land a step either side).
            if (preActivation[i] < -4 * step)
            {
                Assert.Equal(0f, actual[i]);
                negatives++;
            }
            else Assert.True(Math.Abs(expected[i] - actual[i]) <= 4 * step, $"value {i}: float {expected[i]}, INT8 {actual[i]} (step {step})");
        }
        Assert.True(negatives >= expected.Length / 5 && expected.Count(v => v > 4 * step) >= expected.Length / 20, "both signs are covered");
    }

    /// <summary>MobileNetV2: depthwise convolutions, ReLU6 as Clip, residual Adds, the classifier; all of them integer in ONNX Runtime.</summary>
    [Fact]
    public void MobileNetV2QuantizesDepthwiseConvolutionsReluSixAndResidualAdds()
    {
        var model = Architectures.MobileNetV2(1, 28, 10, widthMultiplier: 0.25, seed: 1);
        var quantized = Int8Quantizer.Quantize(model, Sample.Train, new QuantizationOptions { CalibrationImages = 64, KeepFirstAndLastFloat = true });
        Assert.Equal(2, quantized.Report.FloatNodes.Count);
        Assert.Contains("first layer kept float", quantized.Report.FloatNodes[0]);
        Assert.Contains("last layer kept float", quantized.Report.FloatNodes[1]);
        Assert.Single(quantized.Model.Graph.Node, n => n.OpType == "Clip"); // the float first layer's; the others are folded

        var optimized = Optimized(quantized.Model);
        int convolutions = model.Graph.Node.Count(n => n.OpType == "Conv");
        Assert.Equal(convolutions - 1, optimized.Graph.Node.Count(n => n.OpType == "QLinearConv"));
        Assert.Equal(model.Graph.Node.Count(n => n.OpType == "Add"), optimized.Graph.Node.Count(n => n.OpType == "QLinearAdd"));

        // The logits follow the float model's closely (random weights: compared as vectors, not by accuracy).
        var pixels = Sample.Test.Pixels.AsSpan(0, 32 * 784).ToArray();
        var expected = Run(ModelSurgery.FoldBatchNorm(model), pixels, [32, 1, 28, 28], 0);
        var actual = Run(quantized.Model, pixels, [32, 1, 28, 28], 0);
        double dot = 0, ee = 0, aa = 0;
        for (int i = 0; i < expected.Length; i++) (dot, ee, aa) = (dot + expected[i] * actual[i], ee + expected[i] * expected[i], aa + actual[i] * actual[i]);
        Assert.True(dot / Math.Sqrt(ee * aa) > 0.98, $"cosine similarity of the logits {dot / Math.Sqrt(ee * aa):0.000}");
    }

    [Fact]
    public void PercentileCalibrationClipsTheRareExtremesThatMinMaxKeeps()
    {
        var model = Shipped("simplecnn-fashion-mnist.onnx");
        // The activations' steps, summed: every range is at most as wide, and some are narrower.
        float Steps(CalibrationMethod method)
        {
            var quantized = Int8Quantizer.Quantize(model, Sample.Train, new QuantizationOptions { Calibration = method, Percentile = 99.9, CalibrationImages = 128 }).Model;
            var graph = new OnnxGraph(quantized);
            return graph.Nodes.Where(n => n.OpType == "QuantizeLinear").Sum(n => OnnxTensors.ReadFloats(graph.Constant(n.Input[1])!)[0]);
        }
        Assert.True(Steps(CalibrationMethod.Percentile) < 0.9 * Steps(CalibrationMethod.MinMax));
    }

    [Fact]
    public void ModelsThatCannotBeQuantizedSayWhy()
    {
        var model = Shipped("simplecnn-fashion-mnist.onnx");
        var quantized = Int8Quantizer.Quantize(model, Sample.Train, new QuantizationOptions { CalibrationImages = 16 }).Model;
        Assert.Contains("already quantized", Assert.Throws<OnnxModelException>(() => Int8Quantizer.Quantize(quantized, Sample.Train)).Message);

        var old = model.Clone();
        old.OpsetImport.Single(o => OnnxModel.IsDefaultDomain(o.Domain)).Version = 11;
        Assert.Contains("opset 13 or later", Assert.Throws<OnnxModelException>(() => Int8Quantizer.Quantize(old, Sample.Train)).Message);
        Assert.Contains("at least one image", Assert.Throws<ArgumentException>(() => Int8Quantizer.Quantize(model, Sample.Train, new QuantizationOptions { CalibrationImages = 0 })).Message);
        // A quantized model is not pruned or trained: its float model is.
        Assert.Contains("prune and fine-tune the float model", Assert.Throws<OnnxModelException>(() => Optimizer.Pruning.ChannelGroups.Analyze(quantized)).Message);

        // A model fixed at batches of 64 cannot be calibrated on 32 images: said, not quantized with empty ranges.
        var fixedBatch = model.Clone();
        fixedBatch.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimValue = 64;
        var e = Assert.Throws<ArgumentException>(() => Int8Quantizer.Quantize(fixedBatch, Sample.Train, new QuantizationOptions { CalibrationImages = 32 }));
        Assert.Contains("batches of exactly 64", e.Message);
    }

    /// <summary>A classifier whose input is also a graph output, and one whose bias is a single broadcast value: both stay
    /// float, with the reason; the convolution before them is quantized, and the model still runs.</summary>
    [Fact]
    public void LayersItCannotQuantizeStayFloatWithTheReason()
    {
        var random = new Random(5);
        var b = new OnnxModelBuilder("two-heads", 13);
        string x = b.Input("input", -1, 1, 8, 8);
        x = b.Node("Conv", [x, b.Initializer("w", [4, 1, 3, 3], Values(random, 36)), b.Initializer("b", [4], Values(random, 4))], "conv", ("pads", new long[] { 1, 1, 1, 1 }));
        x = b.Node("Relu", [x], "relu");
        string features = b.Node("Flatten", [x], "features");
        b.Output(features, -1, 256);
        string first = b.Node("Gemm", [features, b.Initializer("w1", [3, 256], Values(random, 768)), b.Initializer("b1", [3], Values(random, 3))], "head1", ("transB", 1L));
        b.Output(first, -1, 3);
        string hidden = b.Node("Relu", [features], "hidden");
        string second = b.Node("Gemm", [hidden, b.Initializer("w2", [3, 256], Values(random, 768)), b.Initializer("b2", [1], Values(random, 1))], "head2", ("transB", 1L));
        b.Output(second, -1, 3);
        var model = b.Build();
        var images = new Dataset(Values(random, 16 * 64).Select(v => v + 0.5f).ToArray(), new int[16], ["a"], 1, 8, 8, "random");

        var quantized = Int8Quantizer.Quantize(model, images, new QuantizationOptions { CalibrationImages = 16 });
        Assert.Equal(["conv"], quantized.Report.QuantizedNodes);
        Assert.Contains(quantized.Report.FloatNodes, f => f.StartsWith("head1") && f.Contains("graph output"));
        Assert.Contains(quantized.Report.FloatNodes, f => f.StartsWith("head2") && f.Contains("broadcast bias"));
        var expected = Run(model, images.Pixels, [16, 1, 8, 8], 2);
        var actual = Run(quantized.Model, images.Pixels, [16, 1, 8, 8], 2);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < 0.05 + 0.05 * Math.Abs(expected[i]), $"output {i}: {expected[i]} against {actual[i]}");
    }

    static float[] Values(Random random, int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();

    static ModelProto WithOutput(ModelProto model, string tensor)
    {
        var copy = model.Clone();
        copy.Graph.Output.Add(new ValueInfoProto { Name = tensor, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } } });
        return copy;
    }

    static float[] Run(ModelProto model, float[] pixels, long[] shape, int output)
    {
        using var session = new InferenceSession(OnnxModel.ToBytes(model));
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, shape);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, [session.InputNames[0]], [input], [session.OutputNames[output]]);
        return results[0].GetTensorDataAsSpan<float>().ToArray();
    }

    static double Accuracy(ModelProto model, Dataset data)
    {
        var logits = Run(model, data.Pixels, [data.Count, data.Channels, data.Height, data.Width], 0);
        int classes = logits.Length / data.Count, correct = 0;
        for (int i = 0; i < data.Count; i++)
        {
            var row = logits.AsSpan(i * classes, classes);
            if (row.IndexOf(MaxOf(row)) == data.Labels[i]) correct++;
        }
        return (double)correct / data.Count;
    }

    static float MaxOf(ReadOnlySpan<float> values)
    {
        float max = float.NegativeInfinity;
        foreach (float v in values) max = Math.Max(max, v);
        return max;
    }

    /// <summary>The graph ONNX Runtime runs on this CPU (extended optimisations: its QDQ fusions, without layout changes).</summary>
    static ModelProto Optimized(ModelProto model)
    {
        string path = Path.Combine(Path.GetTempPath(), $"optimized-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = path })
            using (new InferenceSession(OnnxModel.ToBytes(model), options)) { }
            return ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
