using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>MaxPool, AveragePool and their global forms: windows over the spatial axes, channel by channel.</summary>
public sealed class PoolRule : OpRule
{
    public PoolRule() : base("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        if (c.Node.OpType.StartsWith("Global", StringComparison.Ordinal))
        {
            var shape = x.Shape.ToArray();
            for (int d = 2; d < shape.Length; d++) shape[d] = 1;
            return [new TensorInfo(shape, x.ElementType)];
        }
        long[] kernel = c.Node.GetInts("kernel_shape") ?? throw new ShapeException("kernel_shape is required");
        var spatial = ShapeMath.SpatialOutput(c.Node, x.Shape, kernel, ceilMode: c.Node.GetInt("ceil_mode", 0) != 0);
        var output = new TensorInfo([x.Shape[0], x.Shape[1], .. spatial], x.ElementType);
        return c.Node.OpType == "MaxPool" ? [output, output with { ElementType = ShapeMath.Int64Type }] : [output];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        if (flow.ChannelAxis(node.Input[0]) != 1) flow.Pin(node, "pools over the channel axis");
        else flow.Follow(node.Input[0], node.Output[0]); // MaxPool's indices are not activations
    }
}

/// <summary>ReduceMean and ReduceMax (the heads of MnasNet, ShuffleNet and Keras exports): channels follow unless the
/// reduction runs over them.</summary>
public sealed class ReduceRule : OpRule
{
    public ReduceRule() : base("ReduceMean", "ReduceMax") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        var reduced = Reduced(c.Node, ShapeMath.Axes(c, inputSinceOpset: 18), x.Shape.Length);
        bool keep = c.Node.GetInt("keepdims", 1) != 0;
        var shape = new List<long>();
        for (int d = 0; d < x.Shape.Length; d++)
            if (!reduced.Contains(d)) shape.Add(x.Shape[d]);
            else if (keep) shape.Add(1);
        return [new TensorInfo(shape.ToArray(), x.ElementType)];
    }

    /// <summary>The reduced axes: the listed ones, or all (unless noop_with_empty_axes).</summary>
    static HashSet<int> Reduced(NodeProto node, long[]? axes, int rank)
    {
        if (axes is null or { Length: 0 })
            return node.GetInt("noop_with_empty_axes", 0) != 0 ? [] : Enumerable.Range(0, rank).ToHashSet();
        return axes.Select(a => (int)ShapeMath.Normalise(a, rank)).ToHashSet();
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        int rank = flow.Info(node.Input[0]).Shape.Length;
        long[]? axes = flow.Graph.OpsetVersion >= 18
            ? node.Input.Count > 1 && node.Input[1].Length > 0 ? flow.Info(node.Input[1]).KnownValues : null
            : node.GetInts("axes");
        var reduced = Reduced(node, axes, rank);
        if (reduced.Contains(axis)) { flow.Pin(node, "reduces over the channel axis"); return; }
        bool keep = node.GetInt("keepdims", 1) != 0;
        flow.Follow(node.Input[0], node.Output[0], keep ? axis : axis - reduced.Count(d => d < axis));
    }
}
