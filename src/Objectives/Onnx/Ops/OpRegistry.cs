using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>The ops ParetoPrune understands, each by its <see cref="OpRule"/>: the only place that knows an op.</summary>
public static class OpRegistry
{
    static readonly OpRule[] rules =
    [
        new ConvRule(), new ConvTransposeRule(), new MatrixProductRule(), new BatchNormalizationRule(),
        new UnaryRule(), new BinaryRule(), new VariadicRule(), new SoftmaxRule(),
        new PoolRule(), new ReduceRule(),
        new FlattenRule(), new ReshapeRule(), new TransposeRule(), new SqueezeRule(), new ConcatRule(), new PadRule(),
        new SliceRule(), new SplitRule(), new ResizeRule(),
        new PassThroughRule(), new ConstantRule(), new ShapeRule(), new GatherRule(),
    ];

    static readonly Dictionary<string, OpRule> byType = rules.SelectMany(r => r.OpTypes.Select(t => (t, r)))
                                                             .ToDictionary(p => p.t, p => p.r, StringComparer.Ordinal);

    public static IReadOnlyList<OpRule> Rules => rules;

    /// <summary>Every supported op type of the default domain.</summary>
    public static IReadOnlyCollection<string> OpTypes => byType.Keys;

    /// <summary>The rule of a default-domain op type, or null.</summary>
    public static OpRule? Find(string opType) => byType.GetValueOrDefault(opType);

    /// <summary>The rule of a node, or null when its domain or op is not known.</summary>
    public static OpRule? Find(NodeProto node) => OnnxModel.IsDefaultDomain(node.Domain) ? Find(node.OpType) : null;

    /// <summary>Input slots holding learnable tensors when they are float initializers.</summary>
    public static IReadOnlyList<int> LearnableInputs(NodeProto node) => Find(node)?.LearnableInputs(node) ?? [];
}
