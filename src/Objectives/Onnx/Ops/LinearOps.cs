using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>Conv: weight [C_out, C_in/group, k…]. With group 1 its filters are new channels and it consumes its input's;
/// depthwise (group = C_in = C_out) it carries its input's channels; other groupings are pinned.</summary>
public sealed class ConvRule : OpRule
{
    internal static readonly int[] WeightAndBias = [1, 2];

    public ConvRule() : base("Conv") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var (x, w) = (c.X, c.Required(1, "weight"));
        if (x.Shape.Length < 3) throw new ShapeException($"input has rank {x.Shape.Length}; Conv needs N×C×spatial");
        if (w.Shape.Length != x.Shape.Length) throw new ShapeException($"weight rank {w.Shape.Length} differs from input rank {x.Shape.Length}");
        long group = c.Node.GetInt("group", 1);
        if (group <= 0 || x.Shape[1] % group != 0 || w.Shape[0] % group != 0)
            throw new ShapeException($"group {group} does not divide input channels {x.Shape[1]} and output channels {w.Shape[0]}");
        if (w.Shape[1] * group != x.Shape[1])
            throw new ShapeException($"weight expects {w.Shape[1] * group} input channels (shape [{w}], group {group}) but the input has {x.Shape[1]}");
        long[] kernel = c.Node.GetInts("kernel_shape") ?? w.Shape[2..];
        var spatial = ShapeMath.SpatialOutput(c.Node, x.Shape, kernel, ceilMode: false);
        return [new TensorInfo([x.Shape[0], w.Shape[0], .. spatial], x.ElementType)];
    }

    public override IReadOnlyList<int> LearnableInputs(NodeProto node) => WeightAndBias;

    /// <summary>Each output element accumulates (C_in / group) × kernel products; weight[1] is exactly C_in / group.</summary>
    public override long Macs(NodeProto node, Func<string, long[]> shapeOf) =>
        ShapeMath.Product(shapeOf(node.Output[0])) * ShapeMath.Product(shapeOf(node.Input[1]).Skip(1));

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        long channels = flow.Info(node.Input[0]).Shape[1];
        long group = node.GetInt("group", 1);
        FlowThroughWeight(node, flow, filtersAxis: 0, depthwise: weight => group == channels && weight[0] == channels,
                          group == channels ? "depthwise with a channel multiplier" : $"grouped convolution, group={group}");
    }

    /// <summary>The channel behaviour of a layer with a constant weight (Conv, ConvTranspose): with group 1 its filters
    /// (the weight's <paramref name="filtersAxis"/>) are new channels and it consumes its input's, even where the input's
    /// tracked axis is another one (an NHWC graph input); depthwise it carries its input's channels; else it pins.</summary>
    internal static void FlowThroughWeight(NodeProto node, IChannelFlow flow, int filtersAxis, Func<long[], bool> depthwise, string pinned)
    {
        if (!flow.Graph.IsConstant(node.Input[1])) { flow.Pin(node, "weights computed at run time"); return; }
        var weight = flow.Info(node.Input[1]).Shape;
        bool alongChannels = flow.ChannelAxis(node.Input[0]) == 1;
        if (node.GetInt("group", 1) == 1)
        {
            if (alongChannels) flow.Consume(node, node.Input[0]);
            else flow.Pin(node, "reads channels that sit on another axis");
            flow.Produce(node, node.Output[0], 1, (int)weight[filtersAxis]);
        }
        else if (alongChannels && depthwise(weight)) flow.Follow(node.Input[0], node.Output[0]); // output channel c is input channel c
        else flow.Pin(node, pinned);
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Output[0]) is not { } output) return;
        var input = plan.Kept(node.Input[0], axis: 1);
        if (node.GetInt("group", 1) == 1)
        {
            plan.SliceInput(node, 1, 0, output);
            if (input is not null) plan.SliceInput(node, 1, 1, input);
        }
        else if (input is not null && input.Length == node.GetInt("group", 1) && output.Length == input.Length)
        {
            plan.SliceInput(node, 1, 0, output);
            plan.SetAttribute(node, "group", output.Count(k => k));
        }
        if (node.Input.Count > 2 && node.Input[2].Length > 0) plan.SliceInput(node, 2, 0, output);
    }

    public override (int Input, int Axis)? FilterWeight(NodeProto node) => (1, 0);
}

/// <summary>ConvTranspose: weight [C_in, C_out/group, k…]; the transpose of Conv's channel roles.</summary>
public sealed class ConvTransposeRule : OpRule
{
    public ConvTransposeRule() : base("ConvTranspose") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var (x, w) = (c.X, c.Required(1, "weight"));
        if (x.Shape.Length < 3 || w.Shape.Length != x.Shape.Length) throw new ShapeException($"input [{x}] and weight [{w}] do not fit a transposed convolution");
        long group = c.Node.GetInt("group", 1);
        if (w.Shape[0] != x.Shape[1] || group <= 0 || x.Shape[1] % group != 0)
            throw new ShapeException($"weight [{w}] with group {group} does not take {x.Shape[1]} input channels");
        int spatial = x.Shape.Length - 2;
        long[] kernel = c.Node.GetInts("kernel_shape") ?? w.Shape[2..];
        var (strides, dilations, pads) = ShapeMath.Window(c.Node, spatial);
        long[] outputPadding = c.Node.GetInts("output_padding") ?? new long[spatial];
        long[]? outputShape = c.Node.GetInts("output_shape");
        string autoPad = c.Node.GetString("auto_pad", "NOTSET");
        var output = new long[spatial];
        for (int d = 0; d < spatial; d++)
        {
            long full = strides[d] * (x.Shape[d + 2] - 1) + outputPadding[d] + (kernel[d] - 1) * dilations[d] + 1;
            output[d] = outputShape is { Length: > 0 } ? outputShape[^(spatial - d)]
                      : autoPad is "SAME_UPPER" or "SAME_LOWER" ? x.Shape[d + 2] * strides[d]
                      : full - pads[d] - pads[d + spatial];
            if (output[d] <= 0) throw new ShapeException($"the output would have size {output[d]} at axis {d + 2}");
        }
        return [new TensorInfo([x.Shape[0], w.Shape[1] * group, .. output], x.ElementType)];
    }

    public override IReadOnlyList<int> LearnableInputs(NodeProto node) => ConvRule.WeightAndBias;

    /// <summary>Every input element is multiplied into (C_out / group) × kernel outputs.</summary>
    public override long Macs(NodeProto node, Func<string, long[]> shapeOf) =>
        ShapeMath.Product(shapeOf(node.Input[0])) * ShapeMath.Product(shapeOf(node.Input[1]).Skip(1));

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        long group = node.GetInt("group", 1);
        ConvRule.FlowThroughWeight(node, flow, filtersAxis: 1, depthwise: weight => group == weight[0] && weight[1] == 1,
                                   $"grouped transposed convolution, group={group}");
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Output[0]) is not { } output) return;
        var input = plan.Kept(node.Input[0], axis: 1);
        if (node.GetInt("group", 1) == 1)
        {
            if (input is not null) plan.SliceInput(node, 1, 0, input);
            plan.SliceInput(node, 1, 1, output);
        }
        else if (input is not null && input.Length == node.GetInt("group", 1) && plan.Info(node.Input[1]).Shape[1] == 1) // depthwise
        {
            plan.SliceInput(node, 1, 0, input);
            plan.SetAttribute(node, "group", input.Count(k => k));
        }
        if (node.Input.Count > 2 && node.Input[2].Length > 0) plan.SliceInput(node, 2, 0, output);
    }

    public override (int Input, int Axis)? FilterWeight(NodeProto node) => node.GetInt("group", 1) == 1 ? (1, 1) : (1, 0);
}

/// <summary>Gemm and MatMul with a constant 2-D weight: they consume the features of their input's last axis (or the
/// transposed one) and produce new ones, wherever the input came from (Flatten, a reduction, a reshape).</summary>
public sealed class MatrixProductRule : OpRule
{
    public MatrixProductRule() : base("Gemm", "MatMul") { }

    public override TensorInfo[] InferShapes(ShapeContext c) =>
        c.Node.OpType == "Gemm" ? [Gemm(c.Node, c.X, c.Required(1, "B"))] : [MatMul(c.X, c.Required(1, "B"))];

    static readonly int[] GemmInputs = [0, 1, 2], MatMulInputs = [0, 1];

    public override IReadOnlyList<int> LearnableInputs(NodeProto node) => node.OpType == "Gemm" ? GemmInputs : MatMulInputs;

    public override long Macs(NodeProto node, Func<string, long[]> shapeOf)
    {
        var a = shapeOf(node.Input[0]);
        long inner = node.OpType == "Gemm" && node.GetInt("transA", 0) != 0 ? a[^2] : a[^1];
        return ShapeMath.Product(shapeOf(node.Output[0])) * inner;
    }

    static bool TransposedA(NodeProto node) => node.OpType == "Gemm" && node.GetInt("transA", 0) != 0;

    static int InnerAxis(NodeProto node, long[] a) => TransposedA(node) ? a.Length - 2 : a.Length - 1;

    static bool TransposedB(NodeProto node) => node.OpType == "Gemm" && node.GetInt("transB", 0) != 0;

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        if (!flow.Graph.IsConstant(node.Input[1]) || flow.Info(node.Input[1]).Shape.Length != 2 || flow.ChannelAxis(node.Input[1]) is not null)
        {
            flow.Pin(node, "its weight is not a 2-D constant");
            return;
        }
        var output = flow.Info(node.Output[0]).Shape;
        var weight = flow.Info(node.Input[1]).Shape;
        if (flow.ChannelAxis(node.Input[0]) == InnerAxis(node, flow.Info(node.Input[0]).Shape)) flow.Consume(node, node.Input[0]);
        else flow.Pin(node, "its inner dimension is not the input's channel or feature axis");
        flow.Produce(node, node.Output[0], output.Length - 1, (int)(TransposedB(node) ? weight[0] : weight[1]));
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Output[0]) is not { } output) return;
        bool transB = TransposedB(node);
        if (plan.Kept(node.Input[0], InnerAxis(node, plan.Info(node.Input[0]).Shape)) is { } input)
            plan.SliceInput(node, 1, transB ? 1 : 0, input);
        plan.SliceInput(node, 1, transB ? 0 : 1, output);
        if (node.OpType == "Gemm" && node.Input.Count > 2 && node.Input[2].Length > 0)
        {
            var bias = plan.Info(node.Input[2]).Shape;
            if (bias.Length > 0 && bias[^1] == output.Length && output.Length > 1) plan.SliceInput(node, 2, bias.Length - 1, output);
        }
    }

    public override (int Input, int Axis)? FilterWeight(NodeProto node) => (1, TransposedB(node) ? 0 : 1);

    static TensorInfo Gemm(NodeProto node, TensorInfo a, TensorInfo b)
    {
        if (a.Shape.Length != 2 || b.Shape.Length != 2)
            throw new ShapeException($"Gemm needs 2-D inputs, got [{a}] and [{b}]");
        bool transA = node.GetInt("transA", 0) != 0, transB = node.GetInt("transB", 0) != 0;
        long m = transA ? a.Shape[1] : a.Shape[0], k = transA ? a.Shape[0] : a.Shape[1];
        long kb = transB ? b.Shape[1] : b.Shape[0], n = transB ? b.Shape[0] : b.Shape[1];
        if (k != kb) throw new ShapeException($"inner dimensions differ: A is [{a}]{(transA ? "ᵀ" : "")}, B is [{b}]{(transB ? "ᵀ" : "")}");
        return new TensorInfo([m, n], a.ElementType);
    }

    static TensorInfo MatMul(TensorInfo a, TensorInfo b)
    {
        long[] sa = a.Shape.Length == 1 ? [1, a.Shape[0]] : a.Shape;
        long[] sb = b.Shape.Length == 1 ? [b.Shape[0], 1] : b.Shape;
        if (sa[^1] != sb[^2]) throw new ShapeException($"inner dimensions differ: [{a}] × [{b}]");
        var batchA = new TensorInfo(sa[..^2].Length == 0 ? [1] : sa[..^2], a.ElementType);
        var batchB = new TensorInfo(sb[..^2].Length == 0 ? [1] : sb[..^2], b.ElementType);
        long[] batch = sa.Length == 2 && sb.Length == 2 ? [] : ShapeMath.Broadcast("MatMul", [batchA, batchB]).Shape;
        var shape = new List<long>(batch);
        if (a.Shape.Length > 1) shape.Add(sa[^2]);
        if (b.Shape.Length > 1) shape.Add(sb[^1]);
        return new TensorInfo(shape.ToArray(), a.ElementType);
    }
}
