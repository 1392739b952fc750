using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Networks;

/// <summary>
/// Writes the layers the builders share, with initialised weights: convs Kaiming-normal (fan-out, for ReLU, as
/// torchvision), BN γ=1 β=0 with running mean 0 and variance 1, Gemm N(0, 0.01) with zero bias. Seeded.
/// </summary>
internal sealed class LayerWriter
{
    const long Opset = 13;
    readonly Random random;

    public LayerWriter(string name, int inputChannels, int height, int width, int seed)
    {
        Builder = new OnnxModelBuilder(name, Opset);
        random = new Random(seed);
        Input = Builder.Input("input", -1, inputChannels, height, width);
        Shape = [inputChannels, height, width];
    }

    public OnnxModelBuilder Builder { get; }

    public string Input { get; }

    /// <summary>C, H, W of the tensor most recently written by a spatial layer (tracked so builders know sizes).</summary>
    public long[] Shape { get; private set; }

    /// <summary>Resets the tracked shape when a builder writes a side branch from an earlier tensor.</summary>
    public void ShapeOverride(long[] shape) => Shape = shape;

    public string Conv(string x, string name, int inChannels, int outChannels, int kernel, int stride = 1, int? padding = null,
                       int groups = 1, bool bias = false)
    {
        int pad = padding ?? kernel / 2;
        int fanOut = outChannels * kernel * kernel / groups;
        var w = Builder.Initializer($"{name}.weight", [outChannels, inChannels / groups, kernel, kernel],
                                    Normal(outChannels * (inChannels / groups) * kernel * kernel, Math.Sqrt(2.0 / fanOut)));
        string[] inputs = bias ? [x, w, Builder.Initializer($"{name}.bias", [outChannels], new float[outChannels])] : [x, w];
        Shape = [outChannels, (Shape[1] + 2 * pad - kernel) / stride + 1, (Shape[2] + 2 * pad - kernel) / stride + 1];
        return Builder.Node("Conv", inputs, name,
                            ("kernel_shape", new long[] { kernel, kernel }), ("strides", new long[] { stride, stride }),
                            ("pads", new long[] { pad, pad, pad, pad }), ("group", (long)groups));
    }

    public string BatchNorm(string x, string name, int channels)
    {
        string[] inputs =
        [
            x,
            Builder.Initializer($"{name}.weight", [channels], Enumerable.Repeat(1f, channels).ToArray()),
            Builder.Initializer($"{name}.bias", [channels], new float[channels]),
            Builder.Initializer($"{name}.running_mean", [channels], new float[channels]),
            Builder.Initializer($"{name}.running_var", [channels], Enumerable.Repeat(1f, channels).ToArray()),
        ];
        return Builder.Node("BatchNormalization", inputs, name, ("epsilon", 1e-5f), ("momentum", 0.9f));
    }

    public string Relu(string x, string name) => Builder.Node("Relu", [x], name);

    /// <summary>ReLU6 as PyTorch exports it from opset 11 on: Clip with min and max as inputs.</summary>
    public string Relu6(string x, string name)
    {
        string min = Builder.Initializer($"{name}.min", [], [0f]);
        string max = Builder.Initializer($"{name}.max", [], [6f]);
        return Builder.Node("Clip", [x, min, max], name);
    }

    public string ConvBn(string x, string name, int inChannels, int outChannels, int kernel, int stride = 1, int groups = 1) =>
        BatchNorm(Conv(x, $"{name}.conv", inChannels, outChannels, kernel, stride, groups: groups), $"{name}.bn", outChannels);

    public string MaxPool(string x, string name, int kernel, int stride, int padding = 0)
    {
        Shape = [Shape[0], (Shape[1] + 2 * padding - kernel) / stride + 1, (Shape[2] + 2 * padding - kernel) / stride + 1];
        return Builder.Node("MaxPool", [x], name, ("kernel_shape", new long[] { kernel, kernel }),
                            ("strides", new long[] { stride, stride }), ("pads", new long[] { padding, padding, padding, padding }));
    }

    public string GlobalAveragePool(string x, string name)
    {
        Shape = [Shape[0], 1, 1];
        return Builder.Node("GlobalAveragePool", [x], name);
    }

    public string Flatten(string x, string name) => Builder.Node("Flatten", [x], name, ("axis", 1L));

    public string Linear(string x, string name, int inFeatures, int outFeatures)
    {
        var w = Builder.Initializer($"{name}.weight", [outFeatures, inFeatures], Normal(outFeatures * inFeatures, 0.01));
        var b = Builder.Initializer($"{name}.bias", [outFeatures], new float[outFeatures]);
        return Builder.Node("Gemm", [x, w, b], name, ("transB", 1L));
    }

    /// <summary>The classifier output: graph output "output" with a symbolic batch.</summary>
    public ModelProto Finish(string logits, int classes, string architecture)
    {
        var model = Builder.Build();
        // Every built model has the same interface: "input" [batch, C, H, W] → "output" [batch, classes].
        foreach (var node in model.Graph.Node)
        {
            for (int i = 0; i < node.Output.Count; i++) if (node.Output[i] == logits) node.Output[i] = "output";
            for (int i = 0; i < node.Input.Count; i++) if (node.Input[i] == logits) node.Input[i] = "output";
        }
        var info = new ValueInfoProto
        {
            Name = "output",
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = (int)TensorProto.Types.DataType.Float,
                    Shape = new TensorShapeProto { Dim = { new TensorShapeProto.Types.Dimension { DimParam = "batch" },
                                                          new TensorShapeProto.Types.Dimension { DimValue = classes } } },
                },
            },
        };
        model.Graph.Output.Add(info);
        OnnxModel.SetMetadata(model, "paretoprune.architecture", architecture);
        return model;
    }

    float[] Normal(int count, double std)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)(std * random.NextGaussian());
        return values;
    }
}
