using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>Flatten: [N, C, …] → [N, C·…] keeps each channel's features together.</summary>
public sealed class FlattenRule : OpRule
{
    public FlattenRule() : base("Flatten") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var shape = c.X.Shape;
        int axis = (int)ShapeMath.Normalise(c.Node.GetInt("axis", 1), shape.Length + 1);
        return [new TensorInfo([ShapeMath.Product(shape.Take(axis)), ShapeMath.Product(shape.Skip(axis))], c.X.ElementType)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        var shape = flow.Info(node.Input[0]).Shape;
        long axis = ShapeMath.Normalise(node.GetInt("axis", 1), shape.Length + 1);
        if (axis != 1 || flow.ChannelAxis(node.Input[0]) < 1) flow.Pin(node, $"flattens from axis {axis}");
        else flow.Flatten(node.Input[0], node.Output[0]);
    }
}

/// <summary>Reshape: followed when it keeps the channel axis whole (unit axes added or removed, trailing axes merged) or
/// flattens [N, …] to [N, features]; one that splits or mixes channels (a channel shuffle) is pinned.</summary>
public sealed class ReshapeRule : OpRule
{
    public ReshapeRule() : base("Reshape") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        var requested = c.Required(1, "shape").KnownValues
            ?? throw new ShapeException("its target shape is computed at run time and could not be resolved statically");
        bool allowZero = c.Node.GetInt("allowzero", 0) != 0;
        var shape = new long[requested.Length];
        int inferred = -1;
        for (int d = 0; d < shape.Length; d++)
        {
            long v = requested[d];
            if (v == -1)
            {
                if (inferred >= 0) throw new ShapeException("more than one -1 in the target shape");
                inferred = d;
                shape[d] = 1;
            }
            else if (v == 0 && !allowZero)
            {
                if (d >= x.Shape.Length) throw new ShapeException($"0 at axis {d} copies a dimension the input does not have");
                shape[d] = x.Shape[d];
            }
            else shape[d] = v;
        }
        long total = x.ElementCount;
        long known = ShapeMath.Product(shape);
        if (inferred >= 0)
        {
            if (known == 0 || total % known != 0) throw new ShapeException($"cannot reshape {total} elements into [{string.Join(",", requested)}]");
            shape[inferred] = total / known;
        }
        else if (known != total) throw new ShapeException($"cannot reshape [{x}] ({total} elements) into [{string.Join("x", shape)}]");
        return [new TensorInfo(shape, x.ElementType, x.KnownValues)];
    }

    static bool IsFlattening(long[] input, long[] output) => output.Length == 2 && output[0] == input[0] && input.Length > 2;

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        var input = flow.Info(node.Input[0]).Shape;
        var output = flow.Info(node.Output[0]).Shape;
        if (ShapeMath.ChannelAxisAfterReshape(input, output, axis) is { } moved) flow.Follow(node.Input[0], node.Output[0], moved);
        else if (IsFlattening(input, output) && axis >= 1) flow.Flatten(node.Input[0], node.Output[0]);
        else flow.Pin(node, $"reshapes [{string.Join("x", input)}] to [{string.Join("x", output)}], splitting or mixing channels");
    }

    /// <summary>A literal channel or feature count in a constant target shape would no longer fit: it becomes the kept
    /// count, or [0, -1] for a flattening reshape.</summary>
    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Input[0]) is not { } kept || kept.All(k => k) || node.GetInt("allowzero", 0) != 0) return;
        if (!plan.Graph.IsConstant(node.Input[1]) || plan.Info(node.Input[1]).KnownValues is not { } target) return;
        var input = plan.Info(node.Input[0]).Shape;
        var output = plan.Info(node.Output[0]).Shape;
        int axis = plan.ChannelAxis(node.Input[0])!.Value;
        if (ShapeMath.ChannelAxisAfterReshape(input, output, axis) is { } k)
        {
            if (target[k] <= 0) return; // 0 copies the (pruned) input dimension, -1 is inferred
            var updated = target.ToArray();
            updated[k] = kept.Count(x => x);
            plan.ReplaceInput(node, 1, updated);
        }
        else if (IsFlattening(input, output)) plan.ReplaceInput(node, 1, [0, -1]); // 0: copy the batch size
    }
}

/// <summary>Transpose (NHWC inputs of Keras exports, channel shuffles): the channel axis moves to where perm puts it.</summary>
public sealed class TransposeRule : OpRule
{
    public TransposeRule() : base("Transpose") { }

    static long[] Perm(NodeProto node, int rank) => node.GetInts("perm") ?? Enumerable.Range(0, rank).Reverse().Select(d => (long)d).ToArray();

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        var perm = Perm(c.Node, x.Shape.Length);
        if (perm.Length != x.Shape.Length || perm.Order().Where((p, i) => p != i).Any())
            throw new ShapeException($"perm [{string.Join(",", perm)}] is not a permutation of {x.Shape.Length} axes");
        return [new TensorInfo(perm.Select(p => x.Shape[p]).ToArray(), x.ElementType)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        var perm = Perm(node, flow.Info(node.Input[0]).Shape.Length);
        flow.Follow(node.Input[0], node.Output[0], Array.IndexOf(perm, (long)axis));
    }
}

/// <summary>Squeeze and Unsqueeze: the channel axis shifts; removing it pins.</summary>
public sealed class SqueezeRule : OpRule
{
    public SqueezeRule() : base("Squeeze", "Unsqueeze") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        var axes = ShapeMath.Axes(c, inputSinceOpset: 13);
        var shape = new List<long>(x.Shape);
        if (c.Node.OpType == "Squeeze")
        {
            var drop = axes is null
                ? Enumerable.Range(0, shape.Count).Where(d => shape[d] == 1).ToHashSet()
                : axes.Select(a => (int)ShapeMath.Normalise(a, x.Shape.Length)).ToHashSet();
            foreach (int d in drop)
                if (x.Shape[d] != 1) throw new ShapeException($"cannot squeeze axis {d} of size {x.Shape[d]}");
            shape = shape.Where((_, d) => !drop.Contains(d)).ToList();
        }
        else
        {
            if (axes is null) throw new ShapeException("Unsqueeze needs axes");
            int rank = x.Shape.Length + axes.Length;
            foreach (long position in axes.Select(axis => ShapeMath.Normalise(axis, rank)).Order()) shape.Insert((int)position, 1);
        }
        return [new TensorInfo(shape.ToArray(), x.ElementType, x.KnownValues)];
    }

    /// <summary>Squeeze and Unsqueeze are reshapes that add or remove unit axes: the channel axis lands where Reshape's
    /// rule puts it.</summary>
    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        if (ShapeMath.ChannelAxisAfterReshape(flow.Info(node.Input[0]).Shape, flow.Info(node.Output[0]).Shape, axis) is { } moved)
            flow.Follow(node.Input[0], node.Output[0], moved);
        else flow.Pin(node, "removes the channel axis");
    }
}

/// <summary>Concat: along the channel axis the inputs' channels sit side by side (a branch's removal shifts the offsets);
/// along another axis the inputs' channels are tied.</summary>
public sealed class ConcatRule : OpRule
{
    public ConcatRule() : base("Concat") { }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var present = c.Inputs.Where(i => i is not null).Select(i => i!).ToArray();
        if (present.Length == 0) throw new ShapeException("it has no inputs");
        int rank = present[0].Shape.Length;
        int axis = (int)ShapeMath.Normalise(c.Node.GetInt("axis", 0), rank);
        var shape = present[0].Shape.ToArray();
        shape[axis] = 0;
        foreach (var input in present)
        {
            if (input.Shape.Length != rank) throw new ShapeException("inputs have different ranks");
            for (int d = 0; d < rank; d++)
                if (d != axis && input.Shape[d] != shape[d])
                    throw new ShapeException($"input shapes {string.Join(", ", present.Select(p => "[" + p + "]"))} differ outside axis {axis}");
            shape[axis] += input.Shape[axis];
        }
        long[]? values = present.All(p => p.KnownValues is not null) && rank == 1 ? present.SelectMany(p => p.KnownValues!).ToArray() : null;
        return [new TensorInfo(shape, present[0].ElementType, values)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow) =>
        flow.Concatenate(node, (int)ShapeMath.Normalise(node.GetInt("axis", 0), flow.Info(node.Output[0]).Shape.Length));
}

/// <summary>Pad: padding along the channel axis adds constant channels that join the group they are added to.</summary>
public sealed class PadRule : OpRule
{
    public PadRule() : base("Pad") { }

    /// <summary>The begin and end amounts of every axis (an input since opset 11), or null when computed at run time.</summary>
    public static long[]? Amounts(NodeProto node, long opset, Func<string, TensorInfo?> info) =>
        opset >= 11 ? (node.Input.Count > 1 && node.Input[1].Length > 0 ? info(node.Input[1])?.KnownValues : null)
                    : node.GetInts("pads") ?? node.GetInts("paddings");

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        long[]? pads = c.Opset >= 11
            ? (c.Has(1) ? c.Ints(1) ?? throw new ShapeException("its pads are computed at run time") : null)
            : c.Node.GetInts("pads") ?? c.Node.GetInts("paddings");
        if (pads is null || pads.Length != 2 * x.Shape.Length)
            throw new ShapeException($"pads must hold {2 * x.Shape.Length} values (begin and end of each axis)");
        if (c.Opset >= 18 && c.Has(3)) throw new ShapeException("Pad with an axes input is not supported");
        var shape = x.Shape.Select((d, i) => d + pads[i] + pads[i + x.Shape.Length]).ToArray();
        if (shape.Any(d => d <= 0)) throw new ShapeException($"padding [{string.Join(",", pads)}] leaves an empty tensor");
        return [new TensorInfo(shape, x.ElementType)];
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        var pads = Amounts(node, flow.Graph.OpsetVersion, flow.Info);
        int rank = flow.Info(node.Input[0]).Shape.Length;
        if (pads is null) { flow.Pin(node, "pads computed at run time"); return; }
        long before = pads[axis], after = pads[axis + rank];
        if (before == 0 && after == 0) { flow.Follow(node.Input[0], node.Output[0]); return; }
        string mode = node.GetString("mode", "constant");
        if (mode != "constant" || before < 0 || after < 0) { flow.Pin(node, $"pads the channel axis in mode '{mode}'"); return; }
        flow.Pad(node, before, after);
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Output[0]) is not { } kept || plan.ChannelAxis(node.Output[0]) is not { } axis) return;
        var pads = Amounts(node, plan.Graph.OpsetVersion, plan.Info);
        if (pads is null) return;
        int rank = plan.Info(node.Input[0]).Shape.Length;
        int before = (int)pads[axis], after = (int)pads[axis + rank];
        if (before == 0 && after == 0) return;
        var updated = pads.ToArray();
        updated[axis] = kept.Take(before).Count(k => k);
        updated[axis + rank] = kept.Skip(kept.Length - after).Count(k => k);
        if (plan.Graph.OpsetVersion >= 11) plan.ReplaceInput(node, 1, updated);
        else plan.SetAttribute(node, node.Attribute("pads") is not null ? "pads" : "paddings", updated);
    }
}

/// <summary>Slice: a contiguous range of the channel axis (step 1) is a part of the channels; bounds are rewritten to
/// the kept counts when channels go. Other steps along channels are pinned.</summary>
public sealed class SliceRule : OpRule
{
    public SliceRule() : base("Slice") { }

    /// <summary>Per sliced axis: the axis, first index and step, and the count taken.</summary>
    internal sealed record Range(int Axis, long Start, long Step, long Count);

    static List<Range> Ranges(NodeProto node, long opset, long[] shape, Func<int, long[]?> ints)
    {
        long[] starts, ends; long[]? axes, steps;
        if (opset >= 10)
        {
            starts = ints(1) ?? throw new ShapeException("its starts are computed at run time");
            ends = ints(2) ?? throw new ShapeException("its ends are computed at run time");
            axes = node.Input.Count > 3 && node.Input[3].Length > 0 ? ints(3) ?? throw new ShapeException("its axes are computed at run time") : null;
            steps = node.Input.Count > 4 && node.Input[4].Length > 0 ? ints(4) ?? throw new ShapeException("its steps are computed at run time") : null;
        }
        else
        {
            starts = node.GetInts("starts") ?? throw new ShapeException("starts is required");
            ends = node.GetInts("ends") ?? throw new ShapeException("ends is required");
            axes = node.GetInts("axes");
            steps = null;
        }
        axes ??= Enumerable.Range(0, starts.Length).Select(a => (long)a).ToArray();
        var ranges = new List<Range>();
        for (int i = 0; i < axes.Length; i++)
        {
            int axis = (int)ShapeMath.Normalise(axes[i], shape.Length);
            long size = shape[axis], step = steps?[i] ?? 1;
            if (step == 0) throw new ShapeException("a step of 0");
            long start = starts[i] < 0 ? starts[i] + size : starts[i];
            long end = ends[i] < 0 ? ends[i] + size : ends[i];
            if (step > 0) { start = Math.Clamp(start, 0, size); end = Math.Clamp(end, 0, size); }
            else { start = Math.Clamp(start, 0, size - 1); end = Math.Clamp(end, -1, size - 1); }
            long count = step > 0 ? Math.Max(0, (end - start + step - 1) / step) : Math.Max(0, (start - end + (-step) - 1) / -step);
            ranges.Add(new Range(axis, start, step, count));
        }
        return ranges;
    }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        var ranges = Ranges(c.Node, c.Opset, x.Shape, c.Ints);
        var shape = x.Shape.ToArray();
        foreach (var r in ranges) shape[r.Axis] = r.Count;
        long[]? values = null;
        if (x.KnownValues is { } known && x.Shape.Length == 1 && ranges.Count == 1)
            values = Enumerable.Range(0, (int)ranges[0].Count).Select(i => known[ranges[0].Start + i * ranges[0].Step]).ToArray();
        return [new TensorInfo(shape, x.ElementType, values)];
    }

    Range? ChannelRange(NodeProto node, OnnxGraph graph, Func<string, TensorInfo> info, int axis) =>
        Ranges(node, graph.OpsetVersion, info(node.Input[0]).Shape, i => info(node.Input[i]).KnownValues).FirstOrDefault(r => r.Axis == axis);

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        var range = ChannelRange(node, flow.Graph, flow.Info, axis);
        if (range is null) flow.Follow(node.Input[0], node.Output[0]);
        else if (range.Step == 1) flow.Part(node.Input[0], node.Output[0], (int)range.Start, (int)range.Count);
        else flow.Pin(node, $"takes every {range.Step}th channel");
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Input[0]) is not { } kept || kept.All(k => k) || plan.ChannelAxis(node.Input[0]) is not { } axis) return;
        if (ChannelRange(node, plan.Graph, plan.Info, axis) is not { Step: 1 } range) return;
        long start = kept.Take((int)range.Start).Count(k => k);
        long end = start + kept.Skip((int)range.Start).Take((int)range.Count).Count(k => k);
        bool inputs = plan.Graph.OpsetVersion >= 10;
        var starts = (inputs ? plan.Info(node.Input[1]).KnownValues : node.GetInts("starts"))!.ToArray();
        var ends = (inputs ? plan.Info(node.Input[2]).KnownValues : node.GetInts("ends"))!.ToArray();
        long[]? axes = inputs ? (node.Input.Count > 3 && node.Input[3].Length > 0 ? plan.Info(node.Input[3]).KnownValues : null) : node.GetInts("axes");
        int rank = plan.Info(node.Input[0]).Shape.Length;
        int position = axes is null ? axis : Array.FindIndex(axes, a => ShapeMath.Normalise(a, rank) == axis);
        starts[position] = start;
        ends[position] = end;
        if (inputs)
        {
            plan.ReplaceInput(node, 1, starts);
            plan.ReplaceInput(node, 2, ends);
        }
        else
        {
            plan.SetAttribute(node, "starts", starts);
            plan.SetAttribute(node, "ends", ends);
        }
    }
}

/// <summary>Split: along the channel axis each output is a part of the channels, and the sizes follow the kept counts.</summary>
public sealed class SplitRule : OpRule
{
    public SplitRule() : base("Split") { }

    static long[] Sizes(NodeProto node, long opset, long size, int outputs, Func<int, long[]?> ints)
    {
        long[]? split = opset >= 13 ? (node.Input.Count > 1 && node.Input[1].Length > 0 ? ints(1) ?? throw new ShapeException("its sizes are computed at run time") : null)
                                    : node.GetInts("split");
        if (split is { Length: > 0 })
        {
            if (split.Sum() != size) throw new ShapeException($"sizes [{string.Join(",", split)}] do not add up to {size}");
            return split;
        }
        long parts = node.GetInt("num_outputs", outputs);
        long chunk = (size + parts - 1) / parts;
        return Enumerable.Range(0, (int)parts).Select(i => Math.Max(0, Math.Min(chunk, size - i * chunk))).ToArray();
    }

    public override TensorInfo[] InferShapes(ShapeContext c)
    {
        var x = c.X;
        int axis = (int)ShapeMath.Normalise(c.Node.GetInt("axis", 0), x.Shape.Length);
        var sizes = Sizes(c.Node, c.Opset, x.Shape[axis], c.Node.Output.Count, c.Ints);
        return sizes.Select(s => { var shape = x.Shape.ToArray(); shape[axis] = s; return new TensorInfo(shape, x.ElementType); }).ToArray();
    }

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int channelAxis = flow.ChannelAxis(node.Input[0])!.Value;
        var shape = flow.Info(node.Input[0]).Shape;
        int axis = (int)ShapeMath.Normalise(node.GetInt("axis", 0), shape.Length);
        if (axis != channelAxis)
        {
            foreach (string output in node.Output.Where(o => o.Length > 0)) flow.Follow(node.Input[0], output);
            return;
        }
        if (flow.Graph.OpsetVersion >= 18 && node.Attribute("num_outputs") is not null) { flow.Pin(node, "splits channels by num_outputs"); return; }
        var sizes = Sizes(node, flow.Graph.OpsetVersion, shape[axis], node.Output.Count, i => flow.Info(node.Input[i]).KnownValues);
        int start = 0;
        for (int o = 0; o < node.Output.Count; o++)
        {
            if (node.Output[o].Length > 0) flow.Part(node.Input[0], node.Output[o], start, (int)sizes[o]);
            start += (int)sizes[o];
        }
    }

    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (plan.Kept(node.Input[0]) is not { } kept || kept.All(k => k)) return;
        int axis = (int)ShapeMath.Normalise(node.GetInt("axis", 0), plan.Info(node.Input[0]).Shape.Length);
        if (plan.ChannelAxis(node.Input[0]) != axis) return;
        var counts = node.Output.Select(o => (long)plan.Info(o).Shape[axis]).ToArray();
        var updated = new long[counts.Length];
        int start = 0;
        for (int o = 0; o < counts.Length; o++)
        {
            updated[o] = kept.Skip(start).Take((int)counts[o]).Count(k => k);
            start += (int)counts[o];
        }
        if (plan.Graph.OpsetVersion >= 13) plan.ReplaceInput(node, 1, updated);
        else plan.SetAttribute(node, "split", updated);
    }
}

/// <summary>Resize and Upsample: spatial scaling, channel by channel; a scale on the channel axis pins.</summary>
public sealed class ResizeRule : OpRule
{
    public ResizeRule() : base("Resize", "Upsample") { }

    /// <summary>The output size per axis, from scales (attribute before opset 9, an input after) or sizes.</summary>
    static long[] OutputShape(NodeProto node, long opset, long[] input, Func<int, float[]?> floats, Func<int, long[]?> ints)
    {
        float[]? scales;
        if (node.OpType == "Upsample" && opset < 9) scales = node.GetFloats("scales");
        else if (node.OpType == "Upsample" || opset < 11) scales = floats(1);
        else
        {
            if (node.Input.Count > 3 && node.Input[3].Length > 0)
            {
                var sizes = ints(3) ?? throw new ShapeException("its sizes are computed at run time");
                if (sizes.Length != input.Length) throw new ShapeException($"sizes [{string.Join(",", sizes)}] do not match rank {input.Length}");
                return sizes;
            }
            scales = floats(2);
        }
        if (scales is null || scales.Length != input.Length) throw new ShapeException("its scales are missing, computed at run time, or of the wrong rank");
        return input.Select((d, i) => (long)Math.Floor(d * (double)scales[i])).ToArray();
    }

    public override TensorInfo[] InferShapes(ShapeContext c) =>
        [new TensorInfo(OutputShape(c.Node, c.Opset, c.X.Shape, c.Floats, c.Ints), c.X.ElementType)];

    public override void FlowChannels(NodeProto node, IChannelFlow flow)
    {
        int axis = flow.ChannelAxis(node.Input[0])!.Value;
        if (flow.Info(node.Input[0]).Shape[axis] != flow.Info(node.Output[0]).Shape[axis]) flow.Pin(node, "scales the channel axis");
        else flow.Follow(node.Input[0], node.Output[0]);
    }

    /// <summary>Explicit sizes name the channel count, which becomes the kept count.</summary>
    public override void Slice(NodeProto node, ISlicePlan plan)
    {
        if (node.OpType != "Resize" || plan.Graph.OpsetVersion < 11 || node.Input.Count < 4 || node.Input[3].Length == 0) return;
        if (plan.Kept(node.Input[0]) is not { } kept || kept.All(k => k) || plan.ChannelAxis(node.Input[0]) is not { } axis) return;
        var sizes = plan.Info(node.Input[3]).KnownValues!.ToArray();
        sizes[axis] = kept.Count(k => k);
        plan.ReplaceInput(node, 3, sizes);
    }
}
