using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Tests.Training;

/// <summary>The graph module computes what ONNX Runtime computes, and training round-trips through ONNX losslessly.</summary>
public class OnnxModuleTests
{
    public static IEnumerable<object[]> Models()
    {
        foreach (string name in TestModels.AllNames()) yield return [name];
    }

    internal static ModelProto Load(string name) => TestModels.Load(name);

    /// <summary>Plain SGD with momentum 0.9 (no Nesterov, no weight decay).</summary>
    static ParameterUpdate Sgd(OnnxModule module) =>
        ParameterUpdate.For(module.parameters().ToList(), new TrainingOptions { LearningRate = 0.05, Nesterov = false, WeightDecay = 0 });

    static float[] Evaluate(OnnxModule module, float[] input, long[] shape)
    {
        module.eval();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        return module.forward(tensor(input, shape)).data<float>().ToArray();
    }

    [Theory, MemberData(nameof(Models))]
    public void EvaluationModeMatchesOnnxRuntime(string name)
    {
        var model = Load(name);
        using var module = new OnnxModule(model);
        var shape = TestModels.InputShape(model);
        var input = TestModels.RandomInput(shape, seed: 9);
        TestModels.AssertClose(TestModels.Run(model, input, shape), Evaluate(module, input, shape));
    }

    [Fact]
    public void TheChannelsLastLayoutComputesWhatNchwComputes()
    {
        // Grey input and depthwise weights: the one-channel cases where libtorch cannot tell the layouts apart by shape.
        var model = Architectures.MobileNetV2(1, 16, 10, 0.25, seed: 2);
        using var nchw = new OnnxModule(model, channelsLast: false);
        using var nhwc = new OnnxModule(model, channelsLast: true);
        var shape = new long[] { 4, 1, 16, 16 };
        var input = TestModels.RandomInput(shape, seed: 5);
        using (var scope = NewDisposeScope())
        using (no_grad())
        {
            // The convolutions really run channels-last: NHWC memory, NCHW shape, from the first (one input channel) on.
            nhwc.eval();
            var values = nhwc.RunAll(tensor(input, shape));
            foreach (var node in nhwc.CompiledNodes.Where(n => n.OpType == "Conv"))
            {
                var output = values[node.Outputs[0]]!;
                var s = output.shape;
                Assert.Equal(new long[] { s[1] * s[2] * s[3], 1, s[3] * s[1], s[1] }, output.stride());
            }
        }
        var expected = TestModels.Run(model, input, shape);
        TestModels.AssertClose(expected, Evaluate(nchw, input, shape));
        TestModels.AssertClose(expected, Evaluate(nhwc, input, shape));

        // Gradients, convolution by convolution (a whole MobileNetV2's gradients differ between any two summation orders
        // where ReLU6 clips: see KernelSelection.Convolutions).
        foreach (var convolution in KernelSelection.Convolutions(model))
        {
            var gradients = new List<List<float[]>>();
            foreach (bool channelsLast in new[] { false, true })
            {
                using var module = new OnnxModule(convolution, channelsLast);
                using var scope = NewDisposeScope();
                manual_seed(4);
                var x = rand(TestModels.InputShape(convolution, batch: 4)).requires_grad_(true);
                var output = module.forward(x);
                (output * rand(output.shape)).sum().backward();
                gradients.Add([x.grad!.contiguous().data<float>().ToArray(), .. module.parameters().Select(p => p.grad!.contiguous().data<float>().ToArray())]);
            }
            foreach (var (a, b) in gradients[0].Zip(gradients[1]))
                TestModels.AssertClose(a, b, relative: 1e-4, absolute: 1e-5 * a.Max(v => Math.Abs(v)));
        }
    }

    [Fact]
    public void TrainingInEitherLayoutWritesBackTheSameModel()
    {
        var model = Architectures.SimpleCnn(1, 16, 10, [4, 8, 8, 8], seed: 2);
        var written = new List<ModelProto>();
        foreach (bool channelsLast in new[] { false, true })
        {
            using var module = new OnnxModule(model, channelsLast);
            manual_seed(3);
            using var optimizer = Sgd(module);
            module.train();
            for (int step = 0; step < 2; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.ZeroGrad();
                nn.functional.cross_entropy(module.forward(randn(16, 1, 16, 16)), randint(0, 10, [16])).backward();
                optimizer.Step();
            }
            written.Add(module.WriteBack());
        }
        Assert.NotEqual(OnnxModel.ToBytes(model), OnnxModel.ToBytes(written[1]));
        // Judged by what the written models compute: float32 training amplifies rounding differences between summation
        // orders in small parameters (a BN bias whose gradient is a sum that nearly cancels), while a layout mistake (a
        // weight read transposed, no gradient through the input copy) changes the outputs wholesale.
        var shape = new long[] { 8, 1, 16, 16 };
        var input = TestModels.RandomInput(shape, seed: 6);
        var nchwOutput = TestModels.Run(written[0], input, shape);
        TestModels.AssertClose(nchwOutput, TestModels.Run(written[1], input, shape), relative: 0, absolute: 1e-2 * nchwOutput.Max(v => Math.Abs(v)));
    }

    [Fact]
    public void ParametersAndStatisticsAreSeparated()
    {
        using var module = new OnnxModule(Load("resnet_tiny"));
        Assert.Equal(ModelCost.Analyze(Load("resnet_tiny")).Params, module.parameters().Sum(p => p.numel()));
        Assert.Equal(2 * 8, module.Statistics.Count); // running mean and var of the 8 BatchNormalization nodes
        Assert.All(module.Statistics.Values, s => Assert.False(s.requires_grad));
    }

    [Fact]
    public void TrainingThenWritingBackThenReloadingLosesNothing()
    {
        torch.manual_seed(1);
        var model = Load("resnet20");
        using var module = new OnnxModule(model);
        var shape = new long[] { 8, 3, 16, 16 };
        using var optimizer = Sgd(module);
        module.train();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(shape);
            var y = randint(0, 10, [8]);
            optimizer.ZeroGrad();
            nn.functional.cross_entropy(module.forward(x), y).backward();
            optimizer.Step();
        }
        var written = module.WriteBack();
        // Parameters and BN statistics changed, and the written model computes what the module computes.
        Assert.NotEqual(OnnxModel.ToBytes(model), OnnxModel.ToBytes(written));
        var input = TestModels.RandomInput([2, 3, 16, 16], 4);
        TestModels.AssertClose(TestModels.Run(written, input, [2, 3, 16, 16]), Evaluate(module, input, [2, 3, 16, 16]));

        using var reloaded = new OnnxModule(written);
        foreach (var (name, parameter) in module.NamedParameters)
            Assert.Equal(parameter.data<float>().ToArray(), reloaded.NamedParameters[name].data<float>().ToArray());
        foreach (var (name, statistic) in module.Statistics)
            Assert.Equal(statistic.data<float>().ToArray(), reloaded.Statistics[name].data<float>().ToArray());
        Assert.Equal(OnnxModel.ToBytes(written), OnnxModel.ToBytes(reloaded.WriteBack()));
    }

    [Fact]
    public void AnUnsupportedOpIsNamed()
    {
        var b = new OnnxModelBuilder("bad", 13);
        string x = b.Input("x", 1, 3, 4, 4);
        b.Output(b.Node("Einsum", [x], "mystery"));
        var error = Assert.Throws<OnnxModelException>(() => new OnnxModule(b.Build()));
        Assert.Contains("node 'mystery' (Einsum): op 'Einsum' is not supported by the training engine", error.Message);
    }
}
