using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// ONNX operators in TorchSharp. Attributes are read once, when the module is built; each compiled node is a closure
/// over them, so a forward pass does no attribute parsing.
/// </summary>
internal static class Ops
{
    /// <summary>Builds one node's forward function, with its attributes and constant inputs read now.</summary>
    delegate Func<Tensor?[], RunContext, Tensor[]> Compiler(OpSource op);

    /// <summary>A node being compiled, with its graph (constants, opset) and module (random generator).</summary>
    internal sealed record OpSource(NodeProto Node, OnnxGraph Graph, OnnxModule Module)
    {
        public long Opset => Graph.OpsetVersion;

        public string Name => Graph.NameOf(Node);

        public bool Has(int input) => Node.Input.Count > input && Node.Input[input].Length > 0;

        public float[]? ConstantFloats(int input) => Has(input) && Graph.Constant(Node.Input[input]) is { } t ? OnnxTensors.ReadFloats(t) : null;

        public long[]? ConstantInts(int input) => Has(input) && Graph.Constant(Node.Input[input]) is { } t ? OnnxTensors.ReadInt64s(t) : null;

        public OnnxModelException Unsupported(string what) => new(what, Name, Node.OpType);
    }

    /// <summary>The TorchSharp side of the op registry (<see cref="OpRegistry"/>): one entry per op type it names.</summary>
    static readonly Dictionary<string, Compiler> compilers = new(StringComparer.Ordinal)
    {
        ["Conv"] = op => Conv(op.Node),
        ["ConvTranspose"] = ConvTranspose,
        ["BatchNormalization"] = op =>
        {
            double epsilon = op.Node.GetFloat("epsilon", 1e-5f);
            double momentum = 1 - op.Node.GetFloat("momentum", 0.9f); // ONNX weighs the old statistic, PyTorch the new one
            return (x, c) =>
            {
                bool batchStatistics = c.Training || c.RecalibrationStep >= 0;
                double m = c.RecalibrationStep >= 0 ? 1.0 / (c.RecalibrationStep + 1) : momentum;
                return [F.batch_norm(x[0]!, x[3]!, x[4]!, x[1], x[2], batchStatistics, m, epsilon)];
            };
        },
        ["Relu"] = _ => (x, _) => [F.relu(x[0]!)],
        ["LeakyRelu"] = op =>
        {
            var alpha = HeldScalars.Hold(op.Node.GetFloat("alpha", 0.01f));
            return (x, _) => [x[0]!.leaky_relu(alpha)];
        },
        ["Clip"] = op =>
        {
            float? min = op.Opset < 11 ? op.Node.GetFloat("min", float.MinValue) : op.ConstantFloats(1)?[0];
            float? max = op.Opset < 11 ? op.Node.GetFloat("max", float.MaxValue) : op.ConstantFloats(2)?[0];
            if (op.Opset >= 11 && (op.Has(1) && min is null || op.Has(2) && max is null))
                throw op.Unsupported("Clip bounds computed at run time are not supported");
            Scalar? low = min is { } lo ? HeldScalars.Hold(lo) : null, high = max is { } hi ? HeldScalars.Hold(hi) : null;
            return (x, _) => [x[0]!.clamp(low, high)];
        },
        ["Sigmoid"] = _ => (x, _) => [x[0]!.sigmoid()],
        ["Tanh"] = _ => (x, _) => [x[0]!.tanh()],
        ["Erf"] = _ => (x, _) => [x[0]!.erf()],
        ["Gelu"] = op =>
        {
            string approximate = op.Node.GetString("approximate", "none");
            var mode = approximate == "tanh" ? TorchSharp.Modules.GELU.Approximate.tanh : TorchSharp.Modules.GELU.Approximate.none;
            return (x, _) => [x[0]!.gelu(mode)];
        },
        ["HardSigmoid"] = op =>
        {
            var (alpha, beta) = (HeldScalars.Hold(op.Node.GetFloat("alpha", 0.2f)), HeldScalars.Hold(op.Node.GetFloat("beta", 0.5f)));
            var (zero, one) = (HeldScalars.Hold(0), HeldScalars.Hold(1));
            return (x, _) => [x[0]!.mul(alpha).Plus(beta).clamp(zero, one)];
        },
        ["HardSwish"] = _ =>
        {
            var (sixth, half, zero, one) = (HeldScalars.Hold(1.0 / 6), HeldScalars.Hold(0.5), HeldScalars.Hold(0), HeldScalars.Hold(1));
            return (x, _) => [x[0]! * x[0]!.mul(sixth).Plus(half).clamp(zero, one)];
        },
        ["Add"] = _ => (x, _) => [x[0]!.Plus(x[1]!)],
        ["Sub"] = _ => (x, _) => [x[0]! - x[1]!],
        ["Mul"] = _ => (x, _) => [x[0]! * x[1]!],
        // ONNX divides integers (shape arithmetic) with truncation; PyTorch's / would give floats.
        ["Div"] = _ => (x, _) => [x[0]!.is_floating_point() || x[1]!.is_floating_point() ? x[0]! / x[1]! : x[0]!.div(x[1]!, RoundingMode.trunc)],
        ["Sum"] = _ => (x, _) => [Present(x).Aggregate(HeldScalars.Plus)],
        ["Mean"] = _ => (x, _) => [Present(x).Aggregate(HeldScalars.Plus).DividedBy(Present(x).Length)],
        ["Max"] = _ => (x, _) => [Present(x).Aggregate(torch.maximum)],
        ["Min"] = _ => (x, _) => [Present(x).Aggregate(torch.minimum)],
        ["MaxPool"] = Pool,
        ["AveragePool"] = Pool,
        ["GlobalAveragePool"] = _ => (x, _) => [x[0]!.mean(SpatialAxes(x[0]!), keepdim: true)],
        ["GlobalMaxPool"] = _ => (x, _) => [x[0]!.amax(SpatialAxes(x[0]!), keepdim: true)],
        ["ReduceMean"] = Reduce,
        ["ReduceMax"] = Reduce,
        ["Flatten"] = op =>
        {
            long axis = op.Node.GetInt("axis", 1);
            return (x, _) =>
            {
                var shape = x[0]!.shape;
                long a = axis < 0 ? axis + shape.Length : axis;
                long outer = shape.Take((int)a).Aggregate(1L, (p, d) => p * d);
                return [x[0]!.reshape(outer, -1)];
            };
        },
        ["Reshape"] = op =>
        {
            bool allowZero = op.Node.GetInt("allowzero", 0) != 0;
            var constant = op.ConstantInts(1);
            return (x, _) =>
            {
                var target = constant ?? x[1]!.data<long>().ToArray();
                var shape = x[0]!.shape;
                var resolved = target.Select((d, i) => d == 0 && !allowZero ? shape[i] : d).ToArray();
                return [x[0]!.reshape(resolved)];
            };
        },
        ["Transpose"] = op =>
        {
            long[]? perm = op.Node.GetInts("perm");
            return (x, _) => [x[0]!.permute(perm ?? Enumerable.Range(0, (int)x[0]!.dim()).Reverse().Select(d => (long)d).ToArray())];
        },
        ["Gemm"] = op =>
        {
            double alpha = op.Node.GetFloat("alpha", 1f), beta = op.Node.GetFloat("beta", 1f);
            bool transA = op.Node.GetInt("transA", 0) != 0, transB = op.Node.GetInt("transB", 0) != 0;
            if (transB && !transA && alpha == 1 && beta == 1) return (x, _) => [F.linear(x[0]!, x[1]!, x.Length > 2 ? x[2] : null)];
            var (alphaScalar, betaScalar) = (HeldScalars.Hold(alpha), HeldScalars.Hold(beta));
            return (x, _) =>
            {
                var a = transA ? x[0]!.t() : x[0]!;
                var b = transB ? x[1]!.t() : x[1]!;
                var y = a.mm(b).mul(alphaScalar);
                return [x.Length > 2 && x[2] is { } bias ? y.Plus(bias.mul(betaScalar)) : y];
            };
        },
        ["MatMul"] = _ => (x, _) => [x[0]!.matmul(x[1]!)],
        ["Concat"] = op =>
        {
            long axis = op.Node.GetInt("axis", 0);
            return (x, _) => [torch.cat(Present(x), axis)];
        },
        ["Pad"] = op => Pad(op.Node, op.Graph, op.Opset, op.ConstantInts(1), op.ConstantFloats(2)),
        ["Slice"] = Slice,
        ["Split"] = Split,
        ["Resize"] = Resize,
        ["Upsample"] = Resize,
        ["Dropout"] = op =>
        {
            double ratio = op.Opset < 12 ? op.Node.GetFloat("ratio", 0.5f) : op.ConstantFloats(1)?[0] ?? 0.5;
            var random = op.Module.Random;
            return (x, c) =>
            {
                var input = x[0]!;
                if (!c.Training || c.RecalibrationStep >= 0 || ratio == 0) return [input, torch.ones_like(input, ScalarType.Bool)];
                if (ratio >= 1) return [torch.zeros_like(input), torch.zeros_like(input, ScalarType.Bool)];
                // The mask from the module's generator, drawn in logical (NCHW) order whatever the tensor's layout.
                var keep = torch.rand(input.shape, generator: random).AtLeast(ratio);
                return [(input * keep).DividedBy(1 - ratio), keep];
            };
        },
        ["Identity"] = _ => (x, _) => [x[0]!],
        ["Softmax"] = Softmax,
        ["LogSoftmax"] = Softmax,
        ["Cast"] = op =>
        {
            var to = (TensorProto.Types.DataType)op.Node.GetInt("to", 1);
            var type = to switch
            {
                TensorProto.Types.DataType.Float => ScalarType.Float32,
                TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 => ScalarType.Int64,
                _ => throw op.Unsupported($"Cast to {to} is not supported in training"),
            };
            return (x, _) => [x[0]!.to_type(type)];
        },
        ["Constant"] = op => throw op.Unsupported("Constant nodes are read as constants, not run"),
        ["Shape"] = op =>
        {
            long start = op.Node.GetInt("start", 0), end = op.Node.GetInt("end", long.MaxValue);
            return (x, _) =>
            {
                var shape = x[0]!.shape;
                long s = Math.Clamp(start < 0 ? start + shape.Length : start, 0, shape.Length);
                long e = Math.Clamp(end < 0 ? end + shape.Length : end, 0, shape.Length);
                var dims = shape.Skip((int)s).Take((int)Math.Max(0, e - s)).ToArray();
                return [torch.tensor(dims, ScalarType.Int64)];
            };
        },
        ["Gather"] = op =>
        {
            long axis = op.Node.GetInt("axis", 0);
            var zero = HeldScalars.Hold(0);
            return (x, _) =>
            {
                var data = x[0]!;
                long a = axis < 0 ? axis + data.dim() : axis;
                var indices = x[1]!;
                var flat = indices.reshape(-1);
                flat = torch.where(flat.lt(zero), flat.Plus(data.shape[a]), flat);
                var picked = data.index_select(a, flat);
                long[] shape = [.. data.shape.Take((int)a), .. indices.shape, .. data.shape.Skip((int)a + 1)];
                return [picked.reshape(shape)];
            };
        },
        ["Unsqueeze"] = SqueezeOrUnsqueeze,
        ["Squeeze"] = SqueezeOrUnsqueeze,
    };

    /// <summary>The op types the training engine runs (a test checks they are exactly the registry's).</summary>
    public static IReadOnlyCollection<string> OpTypes => compilers.Keys;

    public static Func<Tensor?[], RunContext, Tensor[]> Compile(NodeProto node, OnnxGraph graph, OnnxModule module) =>
        compilers.TryGetValue(node.OpType, out var compile) && OnnxModel.IsDefaultDomain(node.Domain)
            ? compile(new OpSource(node, graph, module))
            : throw new OnnxModelException($"op '{node.OpType}' is not supported by the training engine", graph.NameOf(node), node.OpType);

    static Tensor[] Present(Tensor?[] inputs) => inputs.Where(t => t is not null).Select(t => t!).ToArray();

    static long[] SpatialAxes(Tensor x) => Enumerable.Range(2, (int)x.dim() - 2).Select(d => (long)d).ToArray();

    static Func<Tensor?[], RunContext, Tensor[]> Softmax(OpSource op)
    {
        long opset = op.Opset;
        long axis = op.Node.GetInt("axis", opset >= 13 ? -1 : 1);
        bool log = op.Node.OpType == "LogSoftmax";
        return (x, _) =>
        {
            var input = x[0]!;
            long a = axis < 0 ? axis + input.dim() : axis;
            if (opset >= 13 || a == input.dim() - 1) return [log ? input.log_softmax(a) : input.softmax(a)];
            // Before opset 13 the input is coerced to 2-D at the axis.
            var flat = input.reshape(input.shape.Take((int)a).Aggregate(1L, (p, d) => p * d), -1);
            return [(log ? flat.log_softmax(1) : flat.softmax(1)).reshape(input.shape)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> SqueezeOrUnsqueeze(OpSource op)
    {
        var axes = op.Opset >= 13 ? op.ConstantInts(1) : op.Node.GetInts("axes");
        bool unsqueeze = op.Node.OpType == "Unsqueeze";
        return (x, _) =>
        {
            var t = x[0]!;
            if (unsqueeze)
            {
                long rank = t.dim() + axes!.Length;
                foreach (long a in axes.Select(a => a < 0 ? a + rank : a).Order()) t = t.unsqueeze(a);
                return [t];
            }
            var drop = axes is null ? Enumerable.Range(0, (int)t.dim()).Where(d => t.shape[d] == 1).Select(d => (long)d).ToArray()
                                    : axes.Select(a => a < 0 ? a + t.dim() : a).ToArray();
            return [t.reshape(t.shape.Where((_, d) => !drop.Contains(d)).ToArray())];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Reduce(OpSource op)
    {
        long[]? axes = op.Opset >= 18 ? op.ConstantInts(1) : op.Node.GetInts("axes");
        if (op.Opset >= 18 && op.Has(1) && axes is null) throw op.Unsupported("reduction axes computed at run time are not supported in training");
        bool keep = op.Node.GetInt("keepdims", 1) != 0;
        bool noop = op.Node.GetInt("noop_with_empty_axes", 0) != 0;
        bool max = op.Node.OpType == "ReduceMax";
        return (x, _) =>
        {
            var input = x[0]!;
            if (axes is null or { Length: 0 } && noop) return [input];
            var dims = axes is { Length: > 0 } ? axes.Select(a => a < 0 ? a + input.dim() : a).ToArray() : Enumerable.Range(0, (int)input.dim()).Select(d => (long)d).ToArray();
            return [max ? input.amax(dims, keep) : input.mean(dims, keep)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Slice(OpSource op)
    {
        bool inputs = op.Opset >= 10;
        long[]? starts = inputs ? op.ConstantInts(1) : op.Node.GetInts("starts");
        long[]? ends = inputs ? op.ConstantInts(2) : op.Node.GetInts("ends");
        long[]? axes = inputs ? op.ConstantInts(3) : op.Node.GetInts("axes");
        long[]? steps = inputs ? op.ConstantInts(4) : null;
        bool hasAxes = inputs ? op.Has(3) : axes is not null, hasSteps = inputs && op.Has(4);
        return (x, _) =>
        {
            // Bounds computed from shapes (PyTorch's chunk) are read when the node runs.
            long[] Read(long[]? constant, int input) => constant ?? x[input]!.to_type(ScalarType.Int64).data<long>().ToArray();
            var (s, e) = (Read(starts, 1), Read(ends, 2));
            var (a, st) = (hasAxes ? Read(axes, 3) : null, hasSteps ? Read(steps, 4) : null);
            var t = x[0]!;
            for (int i = 0; i < s.Length; i++)
            {
                long axis = a is null ? i : a[i] < 0 ? a[i] + t.dim() : a[i];
                long size = t.shape[axis], step = st?[i] ?? 1;
                if (step < 0) throw new ArgumentException("negative Slice steps are not supported in training");
                long start = Math.Clamp(s[i] < 0 ? s[i] + size : s[i], 0, size);
                long end = Math.Clamp(e[i] < 0 ? e[i] + size : e[i], start, size);
                t = t.slice(axis, start, end, step);
            }
            return [t];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Split(OpSource op)
    {
        long axis = op.Node.GetInt("axis", 0);
        long[]? sizes = op.Opset >= 13 ? op.ConstantInts(1) : op.Node.GetInts("split");
        if (op.Opset >= 13 && op.Has(1) && sizes is null) throw op.Unsupported("Split sizes computed at run time are not supported in training");
        int outputs = op.Node.Output.Count;
        return (x, _) =>
        {
            var t = x[0]!;
            long a = axis < 0 ? axis + t.dim() : axis;
            long chunk = (t.shape[a] + outputs - 1) / outputs;
            var parts = sizes is { Length: > 0 } ? sizes : Enumerable.Range(0, outputs).Select(i => Math.Max(0, Math.Min(chunk, t.shape[a] - i * chunk))).ToArray();
            return t.split(parts, a);
        };
    }

    /// <summary>Resize and Upsample in the modes exporters write for image models: nearest (asymmetric, floor, as
    /// PyTorch's nearest) and linear (half-pixel, as bilinear with align_corners=False; align_corners also).</summary>
    static Func<Tensor?[], RunContext, Tensor[]> Resize(OpSource op)
    {
        var node = op.Node;
        string mode = node.GetString("mode", "nearest");
        string transform = node.GetString("coordinate_transformation_mode", op.Node.OpType == "Upsample" || op.Opset < 11 ? "asymmetric" : "half_pixel");
        string nearest = node.GetString("nearest_mode", "round_prefer_floor");
        float[]? scales = node.OpType == "Upsample" && op.Opset < 9 ? node.GetFloats("scales")
                        : node.OpType == "Upsample" || op.Opset < 11 ? op.ConstantFloats(1) : op.ConstantFloats(2);
        long[]? sizes = node.OpType == "Resize" && op.Opset >= 11 ? op.ConstantInts(3) : null;
        if (scales is not { Length: > 0 } && sizes is null) throw op.Unsupported("Resize scales or sizes computed at run time are not supported in training");
        bool linear = mode is "linear" or "bilinear";
        if (!linear && mode != "nearest") throw op.Unsupported($"Resize mode '{mode}' is not supported in training");
        if (!linear && !(transform == "asymmetric" && nearest == "floor") && !(op.Opset < 11 || node.OpType == "Upsample"))
            throw op.Unsupported($"nearest Resize with {transform}/{nearest} is not supported in training (PyTorch's is asymmetric/floor)");
        if (linear && transform is not ("half_pixel" or "pytorch_half_pixel" or "align_corners"))
            throw op.Unsupported($"linear Resize with {transform} coordinates is not supported in training");
        bool alignCorners = transform == "align_corners";
        return (x, _) =>
        {
            var input = x[0]!;
            long[] size = sizes ?? input.shape.Select((d, i) => (long)Math.Floor(d * (double)scales![i])).ToArray();
            if (size[0] != input.shape[0] || size[1] != input.shape[1]) throw new ArgumentException("Resize of the batch or channel axis is not supported in training");
            return [linear ? F.interpolate(input, size[2..], mode: InterpolationMode.Bilinear, align_corners: alignCorners)
                           : F.interpolate(input, size[2..], mode: InterpolationMode.Nearest)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> ConvTranspose(OpSource op)
    {
        var node = op.Node;
        long[] strides = node.GetInts("strides") ?? [1, 1];
        long[] dilations = node.GetInts("dilations") ?? [1, 1];
        long[] pads = node.GetInts("pads") ?? [0, 0, 0, 0];
        long[] outputPadding = node.GetInts("output_padding") ?? [0, 0];
        long group = node.GetInt("group", 1);
        if (node.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "VALID") || node.GetInts("output_shape") is not null)
            throw op.Unsupported("ConvTranspose with auto_pad SAME or output_shape is not supported in training");
        if (pads[0] != pads[2] || pads[1] != pads[3]) throw op.Unsupported("ConvTranspose with asymmetric pads is not supported in training");
        return (x, _) =>
        {
            var input = x[0]!;
            if (input.dim() != 4) throw new ArgumentException($"only 2-D transposed convolutions (4-D inputs) are supported, got rank {input.dim()}");
            // oneDNN's transposed convolutions are not checked: ATen's always (float64 while oneDNN is on, which libtorch
            // never sends to oneDNN).
            if (!TorchRuntime.MkldnnEnabled)
                return [F.conv_transpose2d(input, x[1]!, x.Length > 2 ? x[2] : null, strides, [pads[0], pads[1]], outputPadding, dilations, group)];
            return [F.conv_transpose2d(input.to(ScalarType.Float64), x[1]!.to(ScalarType.Float64), x.Length > 2 ? x[2]?.to(ScalarType.Float64) : null,
                                       strides, [pads[0], pads[1]], outputPadding, dilations, group).to(ScalarType.Float32)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Conv(NodeProto node)
    {
        long[] strides = node.GetInts("strides") ?? [1, 1];
        long[] dilations = node.GetInts("dilations") ?? [1, 1];
        long[] pads = node.GetInts("pads") ?? [0, 0, 0, 0];
        long group = node.GetInt("group", 1);
        string autoPad = node.GetString("auto_pad", "NOTSET");
        return (x, c) =>
        {
            var input = x[0]!;
            var weight = x[1]!;
            var bias = x.Length > 2 ? x[2] : null;
            if (input.dim() != 4) throw new ArgumentException($"only 2-D convolutions (4-D inputs) are supported, got rank {input.dim()}");
            long[] p = autoPad is "SAME_UPPER" or "SAME_LOWER" ? SamePads(input.shape, weight.shape, strides, dilations, autoPad == "SAME_LOWER")
                     : autoPad == "VALID" ? [0, 0, 0, 0] : pads;
            long[] padding = [p[0], p[1]];
            if (p[0] != p[2] || p[1] != p[3])
            {
                input = F.pad(input, [p[1], p[3], p[0], p[2]]);
                padding = [0, 0];
            }
            // Each convolution on the kernel checked correct for its signature on this machine (ConvKernels).
            var signature = ConvKernels.Signature(input, weight, bias is not null, strides, padding, dilations, group);
            var kernel = c.Kernels.Choose(signature, c.ChannelsLast);
            return [ConvKernels.Run(kernel, signature, input, weight, bias, strides, padding, dilations, group)];
        };
    }

    static long[] SamePads(long[] input, long[] weight, long[] strides, long[] dilations, bool lower)
    {
        var pads = new long[4];
        for (int d = 0; d < 2; d++)
        {
            long size = input[d + 2], output = (size + strides[d] - 1) / strides[d];
            long total = Math.Max(0, (output - 1) * strides[d] + (weight[d + 2] - 1) * dilations[d] + 1 - size);
            long small = total / 2, large = total - small;
            pads[d] = lower ? large : small;
            pads[d + 2] = lower ? small : large;
        }
        return pads;
    }

    static Func<Tensor?[], RunContext, Tensor[]> Pool(OpSource op)
    {
        var (node, graph) = (op.Node, op.Graph);
        long[] kernel = node.GetInts("kernel_shape")!;
        long[] strides = node.GetInts("strides") ?? [1, 1];
        long[] pads = node.GetInts("pads") ?? [0, 0, 0, 0];
        long[] dilations = node.GetInts("dilations") ?? [1, 1];
        bool ceil = node.GetInt("ceil_mode", 0) != 0;
        bool max = node.OpType == "MaxPool";
        bool countIncludePad = node.GetInt("count_include_pad", 0) != 0;
        if (kernel.Length != 2) throw new OnnxModelException("only 2-D pooling is supported", graph.NameOf(node), node.OpType);
        if (node.GetString("auto_pad", "NOTSET") is not ("NOTSET" or "VALID"))
            throw new OnnxModelException("pooling with auto_pad SAME is not supported in training", graph.NameOf(node), node.OpType);
        bool symmetric = pads[0] == pads[2] && pads[1] == pads[3];
        if (!max && !symmetric && !countIncludePad)
            throw new OnnxModelException("AveragePool with asymmetric pads that exclude padding is not supported in training", graph.NameOf(node), node.OpType);
        return (x, _) =>
        {
            var input = x[0]!;
            long[] padding = [pads[0], pads[1]];
            if (!symmetric)
            {
                input = F.pad(input, [pads[1], pads[3], pads[0], pads[2]], value: max ? double.NegativeInfinity : 0);
                padding = [0, 0];
            }
            return max
                ? [F.max_pool2d(input, kernel, strides, padding, dilations, ceil)]
                : [F.avg_pool2d(input, kernel, strides, padding, ceil, countIncludePad)];
        };
    }

    static Func<Tensor?[], RunContext, Tensor[]> Pad(NodeProto node, OnnxGraph graph, long opset, long[]? constantPads, float[]? constantValue)
    {
        string mode = node.GetString("mode", "constant");
        long[]? attributePads = opset < 11 ? node.GetInts("pads") ?? node.GetInts("paddings") : null;
        double value = opset < 11 ? node.GetFloat("value", 0f) : constantValue?[0] ?? 0;
        var paddingMode = mode switch
        {
            "constant" => TorchSharp.PaddingModes.Constant,
            "reflect" => TorchSharp.PaddingModes.Reflect,
            "edge" => TorchSharp.PaddingModes.Replicate,
            _ => throw new OnnxModelException($"Pad mode '{mode}' is not supported", graph.NameOf(node), node.OpType),
        };
        return (x, _) =>
        {
            var pads = attributePads ?? constantPads ?? x[1]!.data<long>().ToArray();
            int rank = pads.Length / 2;
            // PyTorch lists (begin, end) pairs from the last axis backwards.
            var torchPads = new long[pads.Length];
            for (int d = 0; d < rank; d++)
            {
                torchPads[2 * d] = pads[rank - 1 - d];
                torchPads[2 * d + 1] = pads[2 * rank - 1 - d];
            }
            int trailingZeros = 0;
            while (trailingZeros < torchPads.Length && torchPads[^(trailingZeros + 1)] == 0) trailingZeros++;
            var used = torchPads[..^(trailingZeros - trailingZeros % 2)];
            return [used.Length == 0 ? x[0]! : F.pad(x[0]!, used, paddingMode, value)];
        };
    }
}
