using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Tests.Training;

public class ModelSurgeryTests
{
    [Theory]
    [InlineData("resnet20")]
    [InlineData("mobilenetv2")]
    [InlineData("simplecnn")]
    [InlineData("plain_cnn_bn")]
    [InlineData("resnet_tiny")]
    public void FoldingBatchNormKeepsTheOutputs(string name)
    {
        var model = OnnxModuleTests.Load(name);
        var folded = ModelSurgery.FoldBatchNorm(model);
        Assert.DoesNotContain(folded.Graph.Node, n => n.OpType == "BatchNormalization");
        var shape = TestModels.InputShape(model);
        var input = TestModels.RandomInput(shape, 5);
        TestModels.AssertClose(TestModels.Run(model, input, shape), TestModels.Run(folded, input, shape), relative: 1e-5, absolute: 1e-6);
        Assert.Equal(ModelCost.Analyze(model).Macs, ModelCost.Analyze(folded).Macs);
    }

    [Fact]
    public void KeepingAClassSubsetKeepsThoseLogits()
    {
        var model = OnnxModuleTests.Load("resnet20");
        var subset = ModelSurgery.KeepClasses(model, [7, 2, 5]);
        var shape = TestModels.InputShape(model);
        var input = TestModels.RandomInput(shape, 6);
        var all = TestModels.Run(model, input, shape);
        var kept = TestModels.Run(subset, input, shape);
        for (int n = 0; n < 2; n++)
        {
            Assert.Equal(all[n * 10 + 7], kept[n * 3 + 0], 5);
            Assert.Equal(all[n * 10 + 2], kept[n * 3 + 1], 5);
            Assert.Equal(all[n * 10 + 5], kept[n * 3 + 2], 5);
        }
        Assert.Contains("distinct values in 0..9", Assert.Throws<ArgumentException>(() => ModelSurgery.KeepClasses(model, [3, 3])).Message);
    }

    [Fact]
    public void NormalisationInTheGraphAndTheInterfaceInTheMetadata()
    {
        var model = Architectures.SimpleCnn(3, 8, 4, [4, 4], seed: 2);
        var declared = new ModelInterface(["a", "b", "c", "d"], 3, 8, 8, [0.5f, 0.4f, 0.3f], [0.2f, 0.25f, 0.5f]);
        var withNormalisation = declared.Prepend(model);
        var shape = new long[] { 2, 3, 8, 8 };
        var pixels = TestModels.RandomInput(shape, 1).Select(v => (v + 1) / 2).ToArray(); // in [0, 1]
        var normalised = pixels.Select((v, i) => { int c = i / 64 % 3; return (v - declared.Mean[c]) / declared.Std[c]; }).ToArray();
        TestModels.AssertClose(TestModels.Run(model, normalised, shape), TestModels.Run(withNormalisation, pixels, shape), 1e-5);

        var read = ModelInterface.Read(withNormalisation)!;
        Assert.Equal(["a", "b", "c", "d"], read.ClassNames);
        Assert.Equal(declared.Mean, read.Mean);
        Assert.Equal((3, 8, 8), (read.Channels, read.Height, read.Width));
        Assert.Equal("NCHW", OnnxModel.GetMetadata(withNormalisation, ModelInterface.LayoutKey));
        Assert.Equal(ModelCost.Analyze(model).Params, ModelCost.Analyze(withNormalisation).Params); // not parameters
        Assert.Throws<ArgumentException>(() => declared.Prepend(withNormalisation));
    }
}
