using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>Shape arithmetic shared by several ops' rules.</summary>
public static class ShapeMath
{
    public const int FloatType = (int)TensorProto.Types.DataType.Float;
    public const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    public static long Product(IEnumerable<long> dims) => dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>A possibly negative axis as a position in [0, rank); with <paramref name="clamp"/> clamped into [0, rank].</summary>
    public static long Normalise(long axis, long rank, bool clamp = false)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (clamp) return Math.Clamp(a, 0, rank);
        if (a < 0 || a >= Math.Max(rank, 1)) throw new ShapeException($"axis {axis} is out of range for rank {rank}");
        return a;
    }

    /// <summary>Numpy broadcasting of every present input, with the values of small integer tensors carried through
    /// (shape arithmetic: Add, Sub, Mul, Div of known values).</summary>
    public static TensorInfo Broadcast(string opType, IReadOnlyList<TensorInfo?> inputs)
    {
        var present = inputs.Where(i => i is not null).Select(i => i!).ToArray();
        if (present.Length == 0) throw new ShapeException("it has no inputs");
        int rank = present.Max(i => i.Shape.Length);
        var shape = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            long size = 1;
            foreach (var input in present)
            {
                int k = d - (rank - input.Shape.Length);
                if (k < 0) continue;
                long s = input.Shape[k];
                if (s == 1 || s == size) continue;
                if (size != 1) throw new ShapeException($"shapes {string.Join(" and ", present.Select(p => "[" + p + "]"))} do not broadcast");
                size = s;
            }
            shape[d] = size;
        }
        long[]? values = null;
        long count = Product(shape);
        if (present.Length == 2 && present.All(p => p.KnownValues is not null) && present.All(p => p.ElementCount == count || p.ElementCount == 1))
        {
            values = new long[count];
            for (int i = 0; i < count; i++)
            {
                long a = present[0].KnownValues![present[0].ElementCount == 1 ? 0 : i];
                long b = present[1].KnownValues![present[1].ElementCount == 1 ? 0 : i];
                values[i] = opType switch { "Add" => a + b, "Sub" => a - b, "Mul" => a * b, "Div" => b == 0 ? 0 : a / b, _ => 0 };
            }
            if (opType is not ("Add" or "Sub" or "Mul" or "Div")) values = null;
        }
        return new TensorInfo(shape, present[0].ElementType, values);
    }

    /// <summary>Spatial output size shared by Conv and pooling: explicit pads, or auto_pad SAME/VALID.</summary>
    public static long[] SpatialOutput(NodeProto node, long[] inputShape, long[] kernel, bool ceilMode)
    {
        int spatial = inputShape.Length - 2;
        if (kernel.Length != spatial) throw new ShapeException($"kernel rank {kernel.Length} does not match {spatial} spatial dimensions");
        var (strides, dilations, pads) = Window(node, spatial);
        string autoPad = node.GetString("auto_pad", "NOTSET");
        var output = new long[spatial];
        for (int d = 0; d < spatial; d++)
        {
            long input = inputShape[d + 2];
            long effectiveKernel = (kernel[d] - 1) * dilations[d] + 1;
            output[d] = autoPad switch
            {
                "SAME_UPPER" or "SAME_LOWER" => (input + strides[d] - 1) / strides[d],
                "VALID" => (input - effectiveKernel) / strides[d] + 1,
                "NOTSET" or "" => ceilMode
                    ? (long)Math.Ceiling((input + pads[d] + pads[d + spatial] - effectiveKernel) / (double)strides[d]) + 1
                    : (input + pads[d] + pads[d + spatial] - effectiveKernel) / strides[d] + 1,
                _ => throw new ShapeException($"auto_pad '{autoPad}' is not an ONNX value"),
            };
            if (ceilMode && autoPad is "NOTSET" or "" && (output[d] - 1) * strides[d] >= input + pads[d])
                output[d]--; // ONNX/PyTorch: the last window must start inside the input or its left padding
            if (output[d] <= 0)
                throw new ShapeException($"spatial size {input} at axis {d + 2} is too small for kernel {kernel[d]} (output would be {output[d]})");
        }
        return output;
    }

    /// <summary>Strides, dilations and pads of a windowed op, with ONNX's defaults.</summary>
    public static (long[] Strides, long[] Dilations, long[] Pads) Window(NodeProto node, int spatial)
    {
        long[] strides = node.GetInts("strides") is { Length: > 0 } s ? s : Enumerable.Repeat(1L, spatial).ToArray();
        long[] dilations = node.GetInts("dilations") is { Length: > 0 } dl ? dl : Enumerable.Repeat(1L, spatial).ToArray();
        long[] pads = node.GetInts("pads") is { Length: > 0 } p ? p : new long[2 * spatial];
        if (strides.Length != spatial || dilations.Length != spatial || pads.Length != 2 * spatial)
            throw new ShapeException("strides, dilations or pads do not match the number of spatial dimensions");
        return (strides, dilations, pads);
    }

    /// <summary>The axes an op lists, from its attribute (older opsets) or its second input (newer), or null.</summary>
    public static long[]? Axes(ShapeContext c, int inputSinceOpset, int input = 1) =>
        c.Opset >= inputSinceOpset ? (c.Has(input) ? c.Ints(input) ?? throw new ShapeException("its axes are computed at run time") : null)
                                   : c.Node.GetInts("axes");

    /// <summary>Where a tensor's channel axis lands after a reshape (Reshape, Squeeze, Unsqueeze) that keeps every
    /// channel's elements in one block at the same index: the same number of elements before the axis, and the axis's
    /// size unchanged. Null when the reshape splits or mixes channels.</summary>
    public static int? ChannelAxisAfterReshape(long[] input, long[] output, int axis)
    {
        long before = Product(input.Take(axis));
        for (int k = 0; k < output.Length; k++)
            if (Product(output.Take(k)) == before && output[k] == input[axis]) return k;
        return null;
    }
}
