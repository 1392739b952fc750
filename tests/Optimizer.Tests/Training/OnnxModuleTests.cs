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
        var optimizer = optim.SGD(module.parameters(), 0.05, momentum: 0.9);
        module.train();
        for (int step = 0; step < 3; step++)
        {
            using var scope = NewDisposeScope();
            var x = randn(shape);
            var y = randint(0, 10, [8]);
            optimizer.zero_grad();
            nn.functional.cross_entropy(module.forward(x), y).backward();
            optimizer.step();
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
