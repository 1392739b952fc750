using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace ParetoPrune.Devices;

/// <summary>
/// What running a model at one input shape will cost in memory, estimated before ONNX Runtime sees it: the uploaded
/// file, its weights, and the intermediate tensors alive at the peak (each freed after its last consumer, as ONNX
/// Runtime's planner frees them). Shapes are propagated node by node from the input shape, with the small integer
/// tensors that shape arithmetic computes (Shape, Gather, Concat, Constant…) followed by value, so that a
/// <c>ConstantOfShape</c>, <c>Expand</c>, <c>Tile</c>, <c>Resize</c> or <c>Reshape</c> gets its real size.
/// </summary>
/// <remarks>
/// A second, smaller shape inference beside the Objectives' one on purpose: the agent runs on the Pi with ONNX Runtime
/// alone, without the ONNX schema, ML.NET or the op registry. Its tests hold it to the Objectives' inference on every
/// shipped model. An op it does not follow is named in <see cref="MemoryEstimate.Unresolved"/>, never guessed.
/// </remarks>
/// <param name="PeakBytes">File + weights + intermediate tensors at the peak.</param>
/// <param name="Largest">The node whose output is the largest tensor, or null when no node's output is known.</param>
/// <param name="Unresolved">Nodes whose output sizes could not be followed ("name (Op)"): the estimate leaves them and
/// everything computed from them out, so it is a lower bound when this is not empty.</param>
public sealed record MemoryEstimate(long PeakBytes, long FileBytes, long WeightBytes, long ActivationBytes, LargestTensor? Largest,
                                    IReadOnlyList<string> Unresolved)
{
    public bool Complete => Unresolved.Count == 0;

    /// <summary>"name (Op) makes [a × b] float, 4 GiB".</summary>
    public string DescribeLargest() => Largest is { } l
        ? $"'{l.Node}' ({l.Op}) makes a tensor of [{string.Join(" × ", l.Shape)}] {l.Type}, {ModelMemory.Format(l.Bytes)}"
        : "no tensor's size is known";
}

/// <summary>The largest tensor a model makes: which node makes it, its shape, element type and size.</summary>
public sealed record LargestTensor(string Node, string Op, long[] Shape, string Type, long Bytes);

/// <summary>Estimates a model's peak memory (<see cref="MemoryEstimate"/>) from its bytes, with the ONNX schema left out.</summary>
public static class ModelMemory
{
    /// <summary>Small integer tensors (shapes, axes, repeats) are followed by value up to this many elements.</summary>
    const int MaxFollowedValues = 64;

    /// <summary>No ONNX Runtime kernel takes more dimensions; a file claiming more is not a model.</summary>
    const int MaxRank = 64;

    /// <param name="model">The ONNX file.</param>
    /// <param name="inputShape">The input's whole shape, batch first.</param>
    /// <exception cref="FormatException">The bytes are not an ONNX model.</exception>
    public static MemoryEstimate Estimate(ReadOnlySpan<byte> model, IReadOnlyList<long> inputShape) => Walk(model, inputShape, null);

    /// <summary>The shape of every tensor the estimate could follow, by name (for tests against other shape inference).</summary>
    internal static IReadOnlyDictionary<string, long[]> Shapes(ReadOnlySpan<byte> model, IReadOnlyList<long> inputShape)
    {
        var shapes = new Dictionary<string, long[]>();
        Walk(model, inputShape, shapes);
        return shapes;
    }

    static MemoryEstimate Walk(ReadOnlySpan<byte> model, IReadOnlyList<long> inputShape, Dictionary<string, long[]>? shapes)
    {
        var graph = Graph.Read(model);
        var known = new Dictionary<string, Info>();
        bool overflow = false;
        long weights = 0;
        foreach (var t in graph.Initializers)
        {
            known[t.Name] = t.Info;
            weights = Sum(weights, t.Info.Bytes, ref overflow);
        }
        long input = 0;
        foreach (var (name, elemType) in graph.Inputs)
        {
            if (known.ContainsKey(name)) continue; // an initializer listed as an input (IR < 4)
            var info = new Info([.. inputShape], ElementBytes(elemType), elemType, null);
            known[name] = info;
            input = Sum(input, info.Bytes, ref overflow);
        }

        // Liveness: an intermediate tensor lives from its node to its last consumer; graph outputs to the end.
        var lastUse = new Dictionary<string, int>();
        for (int i = 0; i < graph.Nodes.Count; i++)
            foreach (string name in graph.Nodes[i].Inputs) lastUse[name] = i;
        foreach (string name in graph.Outputs) lastUse[name] = int.MaxValue;

        // Weights, constants and the caller's input are held for the whole run; intermediates are freed.
        var persistent = new HashSet<string>(known.Keys) { "" };
        var unresolved = new List<string>();
        LargestTensor? largest = null;
        long live = input, peak = input;
        for (int i = 0; i < graph.Nodes.Count; i++)
        {
            var node = graph.Nodes[i];
            var inputs = node.Inputs.Select(n => n.Length == 0 ? Info.Absent : known.GetValueOrDefault(n) ?? Info.Unknown).ToArray();
            Info[] outputs;
            if (inputs.Any(x => ReferenceEquals(x, Info.Unknown)))
                outputs = [.. node.Outputs.Select(_ => Info.Unknown)]; // follows from an unresolved node, already named
            else
            {
                try
                {
                    outputs = Infer(node, inputs, graph.Opset);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A node whose attributes make no sense (a stride of 0, a Split into nothing): not followed, named below.
                    outputs = [];
                }
                if (outputs.Length == 0 || outputs.Any(o => ReferenceEquals(o, Info.Unknown)))
                {
                    unresolved.Add($"{node.Display} ({node.Op})");
                    outputs = [.. node.Outputs.Select((_, k) => k < outputs.Length ? outputs[k] : Info.Unknown)];
                }
            }
            for (int k = 0; k < node.Outputs.Count; k++)
            {
                if (node.Outputs[k].Length == 0) continue;
                var info = k < outputs.Length ? outputs[k] : Info.Unknown;
                known[node.Outputs[k]] = info;
                if (ReferenceEquals(info, Info.Unknown)) continue;
                if (node.Op == "Constant")
                {
                    // A constant lives as long as the session, like a weight.
                    weights = Sum(weights, info.Bytes, ref overflow);
                    persistent.Add(node.Outputs[k]);
                    continue;
                }
                live = Sum(live, info.Bytes, ref overflow);
                if (largest is null || info.Bytes > largest.Bytes)
                    largest = new LargestTensor(node.Display, node.Op, info.Shape!, TypeName(info.ElemType), info.Bytes);
            }
            peak = Math.Max(peak, live);
            if (overflow) break; // beyond any budget: the rest cannot change the answer
            foreach (string name in node.Inputs.Distinct())
                if (lastUse.GetValueOrDefault(name) == i && !persistent.Contains(name) && known.TryGetValue(name, out var used))
                    live -= used.Bytes;
            // Outputs nothing reads (a Split's unused parts, MaxPool's indices) are freed at once.
            foreach (string name in node.Outputs.Distinct())
                if (name.Length > 0 && !lastUse.ContainsKey(name) && !persistent.Contains(name) && known.TryGetValue(name, out var unused))
                    live -= unused.Bytes;
        }
        if (shapes is not null)
            foreach (var (name, info) in known)
                if (info.Shape is { } shape && !ReferenceEquals(info, Info.Absent)) shapes[name] = shape;
        long total = overflow ? long.MaxValue : Sum(Sum(model.Length, weights, ref overflow), peak, ref overflow);
        return new MemoryEstimate(overflow ? long.MaxValue : total, model.Length, weights, peak, largest, unresolved);
    }

    /// <summary>A sum of sizes that notes when it passes <see cref="long.MaxValue"/> (a tensor of absurd shape): the estimate is then
    /// "more than anything", not a wrapped negative number that would let the model through.</summary>
    static long Sum(long total, long bytes, ref bool overflow)
    {
        if (bytes == long.MaxValue || total > long.MaxValue - bytes) overflow = true;
        return overflow ? long.MaxValue : total + bytes;
    }

    /// <summary>Bytes in binary units: "512 B", "3.1 MiB", "4.0 GiB".</summary>
    public static string Format(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1L << 20 => (bytes / 1024.0).ToString("0.0 KiB", CultureInfo.InvariantCulture),
        < 1L << 30 => (bytes / (double)(1L << 20)).ToString("0.0 MiB", CultureInfo.InvariantCulture),
        < 1L << 40 => (bytes / (double)(1L << 30)).ToString("0.0 GiB", CultureInfo.InvariantCulture),
        _ => (bytes / (double)(1L << 40)).ToString("0.0 TiB", CultureInfo.InvariantCulture),
    };

    // ---- shapes -------------------------------------------------------------------------------------------------

    /// <summary>A tensor's shape, element type and, for small integer tensors, its values.</summary>
    sealed record Info(long[]? Shape, int ElemBytes, int ElemType, long[]? Values)
    {
        /// <summary>A small float tensor's values (Resize scales).</summary>
        public double[]? FloatValues { get; init; }

        public static readonly Info Unknown = new(null, 0, 0, null);
        public static readonly Info Absent = new([], 0, 0, null); // an optional input left out ("")

        public long Bytes
        {
            get
            {
                long n = ElemBytes;
                foreach (long d in Shape ?? []) n = d <= 0 ? 0 : n > long.MaxValue / d ? long.MaxValue : n * d;
                return n;
            }
        }

        public int Rank => Shape!.Length;
    }

    const int Float = 1, Int64 = 7;

    static Info Tensor(long[] shape, int elemType, long[]? values = null) =>
        new(shape, ElementBytes(elemType), elemType, values is { Length: <= MaxFollowedValues } ? values : null);

    static Info Like(Info x, long[] shape) => new(shape, x.ElemBytes, x.ElemType, null);

    static Info[] Infer(Node n, Info[] x, int opset)
    {
        Info X(int i) => Has(i) ? x[i] : throw new InvalidOperationException("missing input");
        bool Has(int i) => i < x.Length && !ReferenceEquals(x[i], Info.Absent);
        long[] Values(int i) => X(i).Values ?? throw new InvalidOperationException("values not followed");
        switch (n.Op)
        {
            case "Constant":
                if (n.Tensor("value") is { } t) return [t.Info];
                if (n.Attributes.TryGetValue("value_ints", out var vi)) return [Tensor([vi.Ints.Count], Int64, [.. vi.Ints])];
                if (n.Attributes.TryGetValue("value_int", out var v1)) return [Tensor([], Int64, [v1.Int])];
                if (n.Attributes.TryGetValue("value_floats", out var vf)) return [Tensor([vf.Floats.Count], Float)];
                if (n.Attributes.ContainsKey("value_float")) return [Tensor([], Float)];
                return [];
            case "ConstantOfShape":
            {
                var value = n.Tensor("value");
                return [Tensor(Values(0), value?.Info.ElemType ?? Float, value?.Info.Values is { Length: 1 } v && Values(0).Aggregate(1L, (a, d) => a * d) <= MaxFollowedValues
                    ? Enumerable.Repeat(v[0], (int)Values(0).Aggregate(1L, (a, d) => a * d)).ToArray() : null)];
            }
            case "Shape":
            {
                var s = X(0).Shape!;
                int start = Axis(n.Int("start", 0), s.Length, allowEnd: true), end = Axis(n.Int("end", s.Length), s.Length, allowEnd: true);
                var values = s[start..Math.Max(start, end)];
                return [Tensor([values.Length], Int64, values)];
            }
            case "Size": return [Tensor([], Int64, [X(0).Shape!.Aggregate(1L, (a, d) => a * d)])];
            case "Cast": return [Tensor(X(0).Shape!, (int)n.Int("to", Float), X(0).Values)];
            case "CastLike": return [Tensor(X(0).Shape!, X(1).ElemType, X(0).Values)];
            case "Identity": return [X(0)];
            case "Dropout": return n.Outputs.Count > 1 ? [X(0), Tensor(X(0).Shape!, 9)] : [X(0)];
            case "BatchNormalization" or "LayerNormalization" or "InstanceNormalization" or "Softmax" or "LogSoftmax" or "Hardmax"
                or "LRN" or "LpNormalization" or "MeanVarianceNormalization":
                return [Like(X(0), X(0).Shape!)];
            case "QuantizeLinear": return [Tensor(X(0).Shape!, Has(2) ? X(2).ElemType : 2)];
            case "DequantizeLinear": return [Tensor(X(0).Shape!, Float)];
            case "DynamicQuantizeLinear": return [Tensor(X(0).Shape!, 2), Tensor([], Float), Tensor([], 2)];
            case "Add" or "Sub" or "Mul" or "Div" or "Pow" or "Max" or "Min" or "Sum" or "Mean" or "PRelu" or "Mod" or "BitShift":
            {
                var shape = Broadcast(x.Select(i => i.Shape!));
                long[]? values = null;
                if (x.All(i => i.Values is not null) && x.Length == 2 && n.Op is "Add" or "Sub" or "Mul" or "Div" or "Max" or "Min")
                {
                    var (a, b) = (x[0].Values!, x[1].Values!);
                    int count = (int)shape.Aggregate(1L, (p, d) => p * d);
                    if (count <= MaxFollowedValues && (a.Length == count || a.Length == 1) && (b.Length == count || b.Length == 1))
                        values = [.. Enumerable.Range(0, count).Select(k => Apply(n.Op, a[a.Length == 1 ? 0 : k], b[b.Length == 1 ? 0 : k]))];
                }
                return [Tensor(shape, x[0].ElemType, values)];
            }
            case "Equal" or "Less" or "Greater" or "LessOrEqual" or "GreaterOrEqual" or "And" or "Or" or "Xor":
                return [Tensor(Broadcast(x.Select(i => i.Shape!)), 9)];
            case "Where": return [Like(X(1), Broadcast(x.Select(i => i.Shape!)))];
            case "Not" or "IsNaN" or "IsInf": return [Tensor(X(0).Shape!, 9)];
            case "Conv" or "ConvInteger" or "QLinearConv" or "ConvTranspose":
            {
                var (data, weight) = n.Op == "QLinearConv" ? (X(0), X(3)) : (X(0), X(1));
                var w = weight.Shape!;
                bool transpose = n.Op == "ConvTranspose";
                long channels = transpose ? w[1] * n.Int("group", 1) : w[0];
                var spatial = Spatial(n, data.Shape!, w[2..], transpose);
                int elem = n.Op switch { "ConvInteger" => 6, "QLinearConv" => X(7).ElemType, _ => data.ElemType };
                return [Tensor([data.Shape![0], channels, .. spatial], elem)];
            }
            case "MaxPool" or "AveragePool" or "LpPool":
            {
                var s = X(0).Shape!;
                var kernel = n.Ints("kernel_shape") ?? throw new InvalidOperationException("no kernel_shape");
                var output = Like(X(0), [s[0], s[1], .. Spatial(n, s, [.. kernel], transpose: false)]);
                return n.Outputs.Count > 1 ? [output, Tensor(output.Shape!, Int64)] : [output];
            }
            case "GlobalAveragePool" or "GlobalMaxPool" or "GlobalLpPool":
            {
                var s = X(0).Shape!;
                return [Like(X(0), [s[0], s[1], .. Enumerable.Repeat(1L, s.Length - 2)])];
            }
            case "Gemm":
            {
                var (a, b) = (X(0).Shape!, X(1).Shape!);
                return [Like(X(0), [n.Int("transA", 0) != 0 ? a[1] : a[0], n.Int("transB", 0) != 0 ? b[0] : b[1]])];
            }
            case "MatMul" or "MatMulInteger" or "QLinearMatMul":
            {
                var (a, b) = n.Op == "QLinearMatMul" ? (X(0).Shape!, X(3).Shape!) : (X(0).Shape!, X(1).Shape!);
                if (a.Length == 0 || b.Length == 0) throw new InvalidOperationException("scalar matmul");
                long[] a2 = a.Length == 1 ? [1, a[0]] : a, b2 = b.Length == 1 ? [b[0], 1] : b;
                var batch = Broadcast([a2[..^2], b2[..^2]]);
                var shape = new List<long>(batch);
                if (a.Length > 1) shape.Add(a2[^2]);
                if (b.Length > 1) shape.Add(b2[^1]);
                int elem = n.Op switch { "MatMulInteger" => 6, "QLinearMatMul" => X(7).ElemType, _ => X(0).ElemType };
                return [Tensor([.. shape], elem)];
            }
            case "Flatten":
            {
                var s = X(0).Shape!;
                int axis = Axis(n.Int("axis", 1), s.Length, allowEnd: true);
                return [Like(X(0), [s[..axis].Aggregate(1L, (p, d) => p * d), s[axis..].Aggregate(1L, (p, d) => p * d)])];
            }
            case "Reshape":
            {
                var s = X(0).Shape!;
                var target = Values(1).ToArray();
                for (int k = 0; k < target.Length; k++)
                    if (target[k] == 0 && n.Int("allowzero", 0) == 0) target[k] = s[k];
                int inferred = Array.IndexOf(target, -1L);
                if (inferred >= 0)
                {
                    long rest = target.Where((_, k) => k != inferred).Aggregate(1L, (p, d) => p * d);
                    target[inferred] = rest == 0 ? 0 : s.Aggregate(1L, (p, d) => p * d) / rest;
                }
                long[]? kept = X(0).Values is { } v && target.Aggregate(1L, (p, d) => p * d) == v.Length ? v : null;
                return [new Info(target, X(0).ElemBytes, X(0).ElemType, kept)];
            }
            case "Transpose":
            {
                var s = X(0).Shape!;
                var perm = n.Ints("perm") ?? [.. Enumerable.Range(0, s.Length).Reverse().Select(k => (long)k)];
                return [Like(X(0), [.. perm.Select(p => s[p])])];
            }
            case "Unsqueeze":
            {
                var s = X(0).Shape!;
                long[] given = opset >= 13 ? Values(1) : [.. n.Ints("axes") ?? throw new InvalidOperationException("no axes")];
                var axes = given.Select(a => Axis(a, s.Length + given.Length, false)).Order();
                var shape = s.ToList();
                foreach (int a in axes) shape.Insert(a, 1);
                return [new Info([.. shape], X(0).ElemBytes, X(0).ElemType, X(0).Values)];
            }
            case "Squeeze":
            {
                var s = X(0).Shape!;
                IEnumerable<long>? given = opset >= 13 ? (Has(1) ? Values(1) : null) : n.Ints("axes");
                var axes = given?.Select(a => Axis(a, s.Length, false)).ToHashSet() ?? [.. Enumerable.Range(0, s.Length).Where(k => s[k] == 1)];
                return [new Info([.. s.Where((_, k) => !axes.Contains(k))], X(0).ElemBytes, X(0).ElemType, X(0).Values)];
            }
            case "Concat":
            {
                var first = X(0).Shape!;
                int axis = Axis(n.Int("axis", 0), first.Length, false);
                var shape = (long[])first.Clone();
                shape[axis] = x.Sum(i => i.Shape![axis]);
                long[]? values = first.Length == 1 && x.All(i => i.Values is not null) ? [.. x.SelectMany(i => i.Values!)] : null;
                return [Tensor(shape, X(0).ElemType, values)];
            }
            case "Gather":
            {
                var s = X(0).Shape!;
                int axis = Axis(n.Int("axis", 0), s.Length, false);
                var indices = X(1).Shape!;
                long[]? values = null;
                if (axis == 0 && s.Length == 1 && X(0).Values is { } data && X(1).Values is { } at)
                    values = [.. at.Select(k => data[k < 0 ? k + data.Length : k])];
                return [Tensor([.. s[..axis], .. indices, .. s[(axis + 1)..]], X(0).ElemType, values)];
            }
            case "Slice":
            {
                var s = X(0).Shape!;
                long[] starts, ends;
                long[]? axes, steps;
                if (opset >= 10) (starts, ends, axes, steps) = (Values(1), Values(2), Has(3) ? Values(3) : null, Has(4) ? Values(4) : null);
                else (starts, ends, axes, steps) = ([.. n.Ints("starts")!], [.. n.Ints("ends")!], n.Ints("axes")?.ToArray(), null);
                var shape = (long[])s.Clone();
                long[]? values = X(0).Values;
                for (int k = 0; k < starts.Length; k++)
                {
                    int axis = Axis(axes?[k] ?? k, s.Length, false);
                    long step = steps?[k] ?? 1, dim = s[axis];
                    if (step == 0) throw new InvalidOperationException("step 0");
                    long Clamp(long v, long lo, long hi) => Math.Clamp(v < 0 ? v + dim : v, lo, hi);
                    long start = step > 0 ? Clamp(starts[k], 0, dim) : Clamp(starts[k], -1, dim - 1);
                    long end = step > 0 ? Clamp(ends[k], 0, dim) : Clamp(ends[k], -1, dim - 1);
                    shape[axis] = Math.Max(0, step > 0 ? (end - start + step - 1) / step : (start - end - step - 1) / -step);
                    if (values is not null && s.Length == 1)
                        values = [.. Enumerable.Range(0, (int)shape[axis]).Select(j => values[start + j * step])];
                }
                return [Tensor(shape, X(0).ElemType, s.Length == 1 ? values : null)];
            }
            case "Expand": return [Like(X(0), Broadcast([X(0).Shape!, Values(1)]))];
            case "Tile":
            {
                var s = X(0).Shape!;
                var repeats = Values(1);
                return [Like(X(0), [.. s.Select((d, k) => d * repeats[k])])];
            }
            case "Resize" or "Upsample":
            {
                var s = X(0).Shape!;
                if (n.Op == "Resize" && Has(3)) return [Like(X(0), Values(3))];
                double[] scales = n.Op == "Upsample" && opset < 9 ? [.. n.Floats("scales")!]
                    : FloatValues(n.Op == "Resize" && opset >= 11 ? X(2) : X(1)) ?? throw new InvalidOperationException("scales not followed");
                return [Like(X(0), [.. s.Select((d, k) => (long)Math.Floor(d * scales[k]))])];
            }
            case "Pad":
            {
                var s = X(0).Shape!;
                var pads = opset >= 11 ? Values(1) : [.. n.Ints("pads")!];
                return [Like(X(0), [.. s.Select((d, k) => d + pads[k] + pads[k + s.Length])])];
            }
            case "Split":
            {
                var s = X(0).Shape!;
                int axis = Axis(n.Int("axis", 0), s.Length, false);
                long[] sizes = opset >= 13 && Has(1) ? Values(1) : n.Ints("split")?.ToArray()
                    ?? [.. Enumerable.Range(0, n.Outputs.Count).Select(k => s[axis] / n.Outputs.Count + (k < s[axis] % n.Outputs.Count ? 1 : 0))];
                return [.. sizes.Select(size => { var shape = (long[])s.Clone(); shape[axis] = size; return Like(X(0), shape); })];
            }
            case "ReduceMean" or "ReduceSum" or "ReduceMax" or "ReduceMin" or "ReduceProd" or "ReduceL1" or "ReduceL2"
                or "ReduceLogSum" or "ReduceLogSumExp" or "ReduceSumSquare" or "ArgMax" or "ArgMin":
            {
                var s = X(0).Shape!;
                bool arg = n.Op.StartsWith("Arg", StringComparison.Ordinal);
                IEnumerable<long>? given = arg ? [n.Int("axis", 0)] : Has(1) ? Values(1) : n.Ints("axes");
                if (given is null && n.Int("noop_with_empty_axes", 0) != 0) return [X(0)];
                var axes = given?.Select(a => Axis(a, s.Length, false)).ToHashSet() ?? [.. Enumerable.Range(0, s.Length)];
                bool keep = n.Int("keepdims", 1) != 0;
                var shape = s.Select((d, k) => axes.Contains(k) ? (keep ? 1 : -1) : d).Where(d => d >= 0).ToArray();
                return [arg ? Tensor(shape, Int64) : Like(X(0), shape)];
            }
            case "Range":
            {
                if (X(0).Values is not [var start] || X(1).Values is not [var limit] || X(2).Values is not [var delta] || delta == 0)
                    throw new InvalidOperationException("range not followed");
                long count = Math.Max(0, (long)Math.Ceiling((limit - start) / (double)delta));
                return [Tensor([count], X(0).ElemType, count <= MaxFollowedValues ? [.. Enumerable.Range(0, (int)count).Select(k => start + k * delta)] : null)];
            }
            case "Relu" or "LeakyRelu" or "Sigmoid" or "HardSigmoid" or "HardSwish" or "Tanh" or "Elu" or "Selu" or "Celu" or "Gelu"
                or "Softplus" or "Softsign" or "Mish" or "Erf" or "Exp" or "Log" or "Sqrt" or "Reciprocal" or "Abs" or "Neg" or "Floor"
                or "Ceil" or "Round" or "Sign" or "Sin" or "Cos" or "Clip" or "ThresholdedRelu" or "Shrink" or "CumSum":
                return [Like(X(0), X(0).Shape!)];
            default:
                return []; // an op this estimate does not follow: named in Unresolved
        }
    }

    static long Apply(string op, long a, long b) => op switch
    {
        "Add" => a + b,
        "Sub" => a - b,
        "Mul" => a * b,
        "Div" => b == 0 ? throw new InvalidOperationException("division by zero") : a / b,
        "Max" => Math.Max(a, b),
        _ => Math.Min(a, b),
    };

    static double[]? FloatValues(Info x) => x.Values?.Select(v => (double)v).ToArray() ?? x.FloatValues;

    /// <summary>Output spatial sizes of a convolution or pooling (auto_pad, pads, strides, dilations, ceil_mode).</summary>
    static long[] Spatial(Node n, long[] input, long[] kernel, bool transpose)
    {
        int dims = input.Length - 2;
        var strides = n.Ints("strides")?.ToArray() ?? [.. Enumerable.Repeat(1L, dims)];
        var dilations = n.Ints("dilations")?.ToArray() ?? [.. Enumerable.Repeat(1L, dims)];
        var pads = n.Ints("pads")?.ToArray() ?? new long[2 * dims];
        string autoPad = n.String("auto_pad") ?? "NOTSET";
        bool ceil = n.Int("ceil_mode", 0) != 0;
        var output = new long[dims];
        for (int k = 0; k < dims; k++)
        {
            long size = input[k + 2], effective = (kernel[k] - 1) * dilations[k] + 1;
            if (transpose)
            {
                var outputShape = n.Ints("output_shape");
                output[k] = outputShape is not null ? outputShape[k]
                    : strides[k] * (size - 1) + (n.Ints("output_padding")?[k] ?? 0) + effective - pads[k] - pads[k + dims];
            }
            else if (autoPad is "SAME_UPPER" or "SAME_LOWER") output[k] = (size + strides[k] - 1) / strides[k];
            else
            {
                long span = size + (autoPad == "VALID" ? 0 : pads[k] + pads[k + dims]) - effective;
                output[k] = (ceil ? (span + strides[k] - 1) / strides[k] : span / strides[k]) + 1;
            }
        }
        return output;
    }

    static long[] Broadcast(IEnumerable<long[]> shapes)
    {
        var all = shapes.ToList();
        int rank = all.Max(s => s.Length);
        var result = new long[rank];
        for (int k = 0; k < rank; k++)
        {
            long d = 1;
            foreach (var s in all)
            {
                long e = k - (rank - s.Length) is var j && j >= 0 ? s[j] : 1;
                if (e != 1) d = d == 1 ? e : d == e ? d : throw new InvalidOperationException($"shapes do not broadcast ({d} against {e})");
            }
            result[k] = d;
        }
        return result;
    }

    static int Axis(long axis, int rank, bool allowEnd)
    {
        long a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a > rank || (a == rank && !allowEnd)) throw new InvalidOperationException($"axis {axis} outside rank {rank}");
        return (int)a;
    }

    /// <summary>Bytes per element of an ONNX TensorProto.DataType; 4 where unknown.</summary>
    static int ElementBytes(int type) => type switch
    {
        2 or 3 or 9 or 17 or 18 or 19 or 20 => 1, // uint8, int8, bool, float8 variants
        4 or 5 or 10 or 16 => 2,
        7 or 11 or 13 or 14 => 8,
        15 => 16,
        21 or 22 => 1, // 4-bit types, rounded up
        _ => 4,
    };

    static string TypeName(int type) => type switch
    {
        1 => "float", 2 => "uint8", 3 => "int8", 4 => "uint16", 5 => "int16", 6 => "int32", 7 => "int64", 9 => "bool",
        10 => "float16", 11 => "double", 12 => "uint32", 13 => "uint64", 16 => "bfloat16", _ => $"type {type}",
    };

    // ---- the graph, read with the ONNX field numbers -------------------------------------------------------------

    sealed record TensorValue(string Name, Info Info);

    sealed record Attribute(long Int, IReadOnlyList<long> Ints, IReadOnlyList<double> Floats, string? String, TensorValue? Tensor);

    sealed record Node(string Name, string Op, List<string> Inputs, List<string> Outputs, Dictionary<string, Attribute> Attributes)
    {
        public string Display => Name.Length > 0 ? Name : Outputs.FirstOrDefault(o => o.Length > 0) ?? Op;
        public long Int(string name, long fallback) => Attributes.TryGetValue(name, out var a) ? a.Int : fallback;
        public IReadOnlyList<long>? Ints(string name) => Attributes.TryGetValue(name, out var a) && a.Ints.Count > 0 ? a.Ints : null;
        public IReadOnlyList<double>? Floats(string name) => Attributes.TryGetValue(name, out var a) && a.Floats.Count > 0 ? a.Floats : null;
        public string? String(string name) => Attributes.TryGetValue(name, out var a) ? a.String : null;
        public TensorValue? Tensor(string name) => Attributes.TryGetValue(name, out var a) ? a.Tensor : null;
    }

    sealed record Graph(List<Node> Nodes, List<TensorValue> Initializers, List<(string Name, int ElemType)> Inputs, List<string> Outputs, int Opset)
    {
        public static Graph Read(ReadOnlySpan<byte> model)
        {
            Graph? graph = null;
            int opset = 0;
            var reader = new ProtoReader(model);
            while (reader.Next())
            {
                if (reader.Field == 7 && reader.Wire == 2) graph = ReadGraph(reader.Bytes);
                else if (reader.Field == 8 && reader.Wire == 2) // opset_import: domain 1, version 2
                {
                    string domain = "";
                    long version = 0;
                    var r = new ProtoReader(reader.Bytes);
                    while (r.Next())
                        if (r.Field == 1 && r.Wire == 2) domain = Encoding.UTF8.GetString(r.Bytes);
                        else if (r.Field == 2 && r.Wire == 0) version = (long)r.Value;
                    if (domain is "" or "ai.onnx") opset = (int)version;
                }
            }
            return (graph ?? throw new FormatException("no graph")) with { Opset = opset };
        }

        static Graph ReadGraph(ReadOnlySpan<byte> bytes)
        {
            var graph = new Graph([], [], [], [], 0);
            var reader = new ProtoReader(bytes);
            while (reader.Next())
            {
                if (reader.Wire != 2) continue;
                switch (reader.Field)
                {
                    case 1: graph.Nodes.Add(ReadNode(reader.Bytes)); break;
                    case 5: graph.Initializers.Add(ReadTensor(reader.Bytes)); break;
                    case 11: graph.Inputs.Add(ReadValueInfo(reader.Bytes)); break;
                    case 12: graph.Outputs.Add(ReadValueInfo(reader.Bytes).Name); break;
                }
            }
            return graph;
        }

        static Node ReadNode(ReadOnlySpan<byte> bytes)
        {
            var node = new Node("", "", [], [], []);
            var reader = new ProtoReader(bytes);
            while (reader.Next())
            {
                if (reader.Wire != 2) continue;
                switch (reader.Field)
                {
                    case 1: node.Inputs.Add(Encoding.UTF8.GetString(reader.Bytes)); break;
                    case 2: node.Outputs.Add(Encoding.UTF8.GetString(reader.Bytes)); break;
                    case 3: node = node with { Name = Encoding.UTF8.GetString(reader.Bytes) }; break;
                    case 4: node = node with { Op = Encoding.UTF8.GetString(reader.Bytes) }; break;
                    case 5:
                        var (name, attribute) = ReadAttribute(reader.Bytes);
                        node.Attributes[name] = attribute;
                        break;
                }
            }
            return node;
        }

        static (string Name, Attribute Value) ReadAttribute(ReadOnlySpan<byte> bytes)
        {
            string name = "";
            long i = 0;
            var ints = new List<long>();
            var floats = new List<double>();
            string? s = null;
            TensorValue? tensor = null;
            var reader = new ProtoReader(bytes);
            while (reader.Next())
            {
                switch (reader.Field, reader.Wire)
                {
                    case (1, 2): name = Encoding.UTF8.GetString(reader.Bytes); break;
                    case (2, 5): floats.Add(BinaryPrimitives.ReadSingleLittleEndian(reader.Bytes)); break;
                    case (3, 0): i = (long)reader.Value; break;
                    case (4, 2): s = Encoding.UTF8.GetString(reader.Bytes); break;
                    case (5, 2): tensor = ReadTensor(reader.Bytes); break;
                    case (7, 5): floats.Add(BinaryPrimitives.ReadSingleLittleEndian(reader.Bytes)); break;
                    case (7, 2): for (int k = 0; k + 4 <= reader.Bytes.Length; k += 4) floats.Add(BinaryPrimitives.ReadSingleLittleEndian(reader.Bytes[k..])); break;
                    case (8, 0) or (8, 2): reader.AddVarints(ints); break;
                }
            }
            return (name, new Attribute(i, ints, floats, s, tensor));
        }

        static (string Name, int ElemType) ReadValueInfo(ReadOnlySpan<byte> bytes)
        {
            string name = "";
            int elemType = Float;
            var reader = new ProtoReader(bytes);
            while (reader.Next())
            {
                if (reader.Field == 1 && reader.Wire == 2) name = Encoding.UTF8.GetString(reader.Bytes);
                else if (reader.Field == 2 && reader.Wire == 2) // TypeProto.tensor_type (1) → elem_type (1)
                {
                    var type = new ProtoReader(reader.Bytes);
                    while (type.Next())
                        if (type.Field == 1 && type.Wire == 2)
                        {
                            var tensor = new ProtoReader(type.Bytes);
                            while (tensor.Next())
                                if (tensor.Field == 1 && tensor.Wire == 0) elemType = (int)tensor.Value;
                        }
                }
            }
            return (name, elemType);
        }

        static TensorValue ReadTensor(ReadOnlySpan<byte> bytes)
        {
            var dims = new List<long>();
            var ints = new List<long>();
            var floats = new List<double>();
            int type = 0;
            string name = "";
            ReadOnlySpan<byte> rawSpan = default;
            var reader = new ProtoReader(bytes);
            while (reader.Next())
            {
                switch (reader.Field, reader.Wire)
                {
                    case (1, 0) or (1, 2): reader.AddVarints(dims); break;
                    case (2, 0): type = (int)reader.Value; break;
                    case (4, 5): floats.Add(BinaryPrimitives.ReadSingleLittleEndian(reader.Bytes)); break;
                    case (4, 2): for (int k = 0; k + 4 <= reader.Bytes.Length && floats.Count <= MaxFollowedValues; k += 4) floats.Add(BinaryPrimitives.ReadSingleLittleEndian(reader.Bytes[k..])); break;
                    case (5, 0) or (5, 2) or (7, 0) or (7, 2): reader.AddVarints(ints, MaxFollowedValues + 1); break;
                    case (8, 2): name = Encoding.UTF8.GetString(reader.Bytes); break;
                    case (9, 2): rawSpan = reader.Bytes; break;
                }
            }
            if (dims.Count > MaxRank) throw new FormatException($"tensor '{name}' has rank {dims.Count}");
            long count = dims.Aggregate(1L, (p, d) => d <= 0 ? 0 : p > long.MaxValue / d ? long.MaxValue : p * d);
            long[]? values = null;
            double[]? floatValues = null;
            if (count <= MaxFollowedValues)
            {
                byte[] raw = rawSpan.Length <= 8 * MaxFollowedValues ? rawSpan.ToArray() : [];
                if (type is Int64 or 6)
                {
                    int size = type == Int64 ? 8 : 4;
                    values = raw.Length >= count * size
                        ? [.. Enumerable.Range(0, (int)count).Select(k => size == 8 ? BinaryPrimitives.ReadInt64LittleEndian(raw.AsSpan(k * 8)) : BinaryPrimitives.ReadInt32LittleEndian(raw.AsSpan(k * 4)))]
                        : ints.Count >= count ? [.. ints.Take((int)count)] : null;
                }
                else if (type == Float)
                    floatValues = raw.Length >= count * 4
                        ? [.. Enumerable.Range(0, (int)count).Select(k => (double)BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(k * 4)))]
                        : floats.Count >= count ? [.. floats.Take((int)count)] : null;
            }
            var info = Tensor([.. dims], type, values) with { FloatValues = floatValues };
            return new TensorValue(name, info);
        }
    }
}
