using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>Activation functions and other one-input element-wise ops: the same shape, the same channels.</summary>
public sealed class UnaryRule : OpRule
{
    static readonly HashSet<string> Measured = ["Relu", "Clip", "LeakyRelu", "HardSwish", "Gelu"];
    static readonly HashSet<string> PiecewiseLinear = ["Relu", "LeakyRelu", "Clip"];

    public UnaryRule() : base("Relu", "LeakyRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Gelu") { }

    public override TensorInfo[] InferShapes(ShapeContext c) => [c.X with { KnownValues = null }];

    public override void FlowChannels(NodeProto node, IChannelFlow flow) => flow.Follow(node.Input[0], node.Output[0]);

    public override bool IsActivation(NodeProto node) => Measured.Contains(node.OpType);

    /// <summary>ReLU-like functions pass relevance by the generic rule (the identity where they are linear); smooth ones
    /// pass it through.</summary>
    public override Relevance LrpRule(NodeProto node) => PiecewiseLinear.Contains(node.OpType) ? Relevance.Epsilon : Relevance.PassThrough;
}

/// <summary>Add, Sub, Mul, Div: numpy broadcasting; channels at the same position of both inputs are one channel, and a
/// constant laid along the channel axis (a bias, a scale) loses the removed channels' entries.</summary>
public sealed class BinaryRule : OpRule
{
    public BinaryRule() : base("Add", "Sub", "Mul", "Div") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        if (c.Inputs.Count(i => i is not null) < 2) throw new ShapeException("it needs two inputs");
        return [ShapeMath.Broadcast(c.Node.OpType, c.Inputs)];
    }

    /// <summary>Constants added to or multiplied with activations (biases and scales) are learnable; the constants of
    /// input normalisation (Sub, Div) are not.</summary>
    static readonly int[] BothInputs = [0, 1];

    public override IReadOnlyList<int> LearnableInputs(NodeProto node) => node.OpType is "Add" or "Mul" ? BothInputs : [];

    public override void FlowChannels(NodeProto node, IChannelFlow flow) => flow.Merge(node);

    public override void Slice(NodeProto node, ISlicePlan plan) => SliceBroadcastConstants(node, plan);

    public override Relevance LrpRule(NodeProto node) => node.OpType == "Mul" ? Relevance.Gate : Relevance.Epsilon;

    /// <summary>A constant whose axis lines up with the output's channel axis (counted from the right) is sliced with it.</summary>
    internal static void SliceBroadcastConstants(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Output[0]) is not { } kept || plan.ChannelAxis(node.Output[0]) is not { } axis) return;
        int fromRight = plan.Info(node.Output[0]).Shape.Length - axis;
        for (int i = 0; i < node.Input.Count; i++)
        {
            string input = node.Input[i];
            if (input.Length == 0 || !plan.Graph.IsConstant(input)) continue;
            var shape = plan.Info(input).Shape;
            int inputAxis = shape.Length - fromRight;
            if (inputAxis >= 0 && shape[inputAxis] == kept.Length && kept.Length > 1) plan.SliceInput(node, i, inputAxis, kept);
        }
    }
}

/// <summary>Sum, Max, Min, Mean over any number of inputs, with broadcasting.</summary>
public sealed class VariadicRule : OpRule
{
    public VariadicRule() : base("Sum", "Max", "Min", "Mean") { }

    public override TensorInfo[] InferShapes(ShapeContext c) => [ShapeMath.Broadcast(c.Node.OpType, c.Inputs) with { KnownValues = null }];

    public override void FlowChannels(NodeProto node, IChannelFlow flow) => flow.Merge(node);

    public override void Slice(NodeProto node, ISlicePlan plan) => BinaryRule.SliceBroadcastConstants(node, plan);
}

/// <summary>BatchNormalization: per-channel scale and shift along axis 1.</summary>
public sealed class BatchNormalizationRule : OpRule
{
    public BatchNormalizationRule() : base("BatchNormalization") { }

    public override TensorInfo[] InferShapes(ShapeContext c) => [c.X with { KnownValues = null }];

    /// <summary>γ and β; the running statistics are stored but not learnt.</summary>
    public override IReadOnlyList<int> LearnableInputs(NodeProto node) => ConvRule.WeightAndBias;

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        if (flow.ChannelAxis(node.Input[0]) != 1) flow.Pin(node, "normalises a non-channel axis");
        else flow.Follow(node.Input[0], node.Output[0]);
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Input[0]) is not { } kept) return;
        for (int k = 1; k <= 4; k++) plan.SliceInput(node, k, 0, kept);
    }

    public override int? ChannelScale(NodeProto node) => 1;
}

/// <summary>Softmax and LogSoftmax: follow the channels unless they normalise across them.</summary>
public sealed class SoftmaxRule : OpRule
{
    public SoftmaxRule() : base("Softmax", "LogSoftmax") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        ShapeMath.Normalise(c.Node.GetInt("axis", c.Opset >= 13 ? -1 : 1), c.X.Shape.Length);
        return [c.X with { KnownValues = null }];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        int rank = flow.Info(node.Input[0]).Shape.Length;
        long normalised = ShapeMath.Normalise(node.GetInt("axis", flow.Graph.OpsetVersion >= 13 ? -1 : 1), rank);
        // Before opset 13 the input is coerced to 2-D at the axis: every axis from it on is normalised together.
        if (normalised == axis || flow.Graph.OpsetVersion < 13 && normalised <= axis) flow.Pin(node, "normalises across channels");
        else flow.Follow(node.Input[0], node.Output[0]);
    }

    public override Relevance LrpRule(NodeProto node) => Relevance.PassThrough;
}
