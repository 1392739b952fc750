using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>Identity, Cast and Dropout (a no-op in inference): the same tensor, the same channels.</summary>
public sealed class PassThroughRule : OpRule
{
    public PassThroughRule() : base("Identity", "Cast", "Dropout") { }

    public override TensorInfo[] InferShapes(ShapeContext c) => c.Node.OpType switch
    {
        "Identity" => [c.X],
        "Cast" => [c.X with { ElementType = (int)c.Node.GetInt("to", ShapeMath.FloatType) }],
        _ => [c.X with { KnownValues = null }, c.X with { KnownValues = null, ElementType = (int)TensorProto.Types.DataType.Bool }],
    };

    public override void FlowChannels(NodeProto node, IChannelFlow flow) => flow.Follow(node.Input[0], node.Output[0]); // not Dropout's mask

    public override Relevance LrpRule(NodeProto node) => node.OpType == "Cast" ? Relevance.Epsilon : Relevance.PassThrough;
}

/// <summary>Constant: its value is read by <see cref="OnnxGraph"/>; no inputs, no channels.</summary>
public sealed class ConstantRule : OpRule
{
    public ConstantRule() : base("Constant") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var value = c.Graph.Constant(c.Node.Output[0])!;
        long[]? values = value.DataType is ShapeMath.Int64Type or (int)TensorProto.Types.DataType.Int32 ? OnnxTensors.ReadInt64s(value) : null;
        return [new TensorInfo(OnnxTensors.Shape(value), value.DataType, values)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow) { }
}

/// <summary>Shape: the dimensions of its input as known values (the start of <c>x.view(n, -1)</c> chains); reads no channels.</summary>
public sealed class ShapeRule : OpRule
{
    public ShapeRule() : base("Shape") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var shape = c.X.Shape;
        long start = ShapeMath.Normalise(c.Node.GetInt("start", 0), shape.Length, clamp: true);
        long end = ShapeMath.Normalise(c.Node.GetInt("end", shape.Length), shape.Length, clamp: true);
        var values = shape.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray();
        return [new TensorInfo([values.Length], ShapeMath.Int64Type, values)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow) { }
}

/// <summary>Gather: picks entries of shape vectors; on activations its effect on channels is not followed.</summary>
public sealed class GatherRule : OpRule
{
    public GatherRule() : base("Gather") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var (data, indices) = (c.X, c.Required(1, "indices"));
        int axis = (int)ShapeMath.Normalise(c.Node.GetInt("axis", 0), data.Shape.Length);
        long[] shape = [.. data.Shape[..axis], .. indices.Shape, .. data.Shape[(axis + 1)..]];
        long[]? values = null;
        if (data.KnownValues is not null && indices.KnownValues is not null && data.Shape.Length == 1)
            values = indices.KnownValues.Select(i => data.KnownValues[(int)(i < 0 ? i + data.Shape[0] : i)]).ToArray();
        return [new TensorInfo(shape, data.ElementType, values)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow) => flow.Pin(node, "gathers entries of an activation");
}
