using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx.Ops;

/// <summary>
/// Everything ParetoPrune knows about one ONNX op (or a family with the same rules), in one place: its output shapes,
/// its cost, how it moves channels, and what of it changes when channels are removed. The training engine's TorchSharp
/// implementation is registered under the same name in the Optimizer (Objectives stays free of TorchSharp); a test
/// checks that both registries name the same ops. Adding an op is one rule here plus its TorchSharp entry.
/// </summary>
public abstract class OpRule
{
    protected OpRule(params string[] opTypes) => OpTypes = opTypes;

    /// <summary>The op types that follow this rule.</summary>
    public IReadOnlyList<string> OpTypes { get; }

    /// <summary>Output shapes (and known integer values, for shape arithmetic) from the inputs'.</summary>
    public abstract TensorInfo[] InferShapes(ShapeContext c);

    /// <summary>Input slots that hold learnable tensors when they are float initializers (the one rule for what a
    /// parameter is: counting, pruned cost, and training).</summary>
    public virtual IReadOnlyList<int> LearnableInputs(NodeProto node) => [];

    /// <summary>Multiply-accumulates of one run, from the shapes of the node's tensors. The shapes may be those of a
    /// pruned model (predicted before it is built), so the formula must read every size from <paramref name="shapeOf"/>.</summary>
    public virtual long Macs(NodeProto node, Func<string, long[]> shapeOf) => 0;

    /// <summary>How the node moves channels from its inputs to its outputs (called only when an input carries them).</summary>
    public abstract void FlowChannels(NodeProto node, IChannelFlow flow);

    /// <summary>What of the node changes when channels are removed: slices of its constant inputs, attributes.</summary>
    public virtual void Slice(NodeProto node, ISlicePlan plan) { }

    /// <summary>The weight whose slices along an axis are the filters of this node's output channels (magnitude
    /// criteria, unstructured pruning), or null.</summary>
    public virtual (int Input, int Axis)? FilterWeight(NodeProto node) => null;

    /// <summary>The per-channel scale input (BatchNormalization's γ, for the BN-scale criterion), or null.</summary>
    public virtual int? ChannelScale(NodeProto node) => null;

    /// <summary>How Layer-wise Relevance Propagation passes relevance back through the node.</summary>
    public virtual Relevance LrpRule(NodeProto node) => Relevance.Epsilon;

    /// <summary>An activation function after which channels are measured (APoZ, mean activation).</summary>
    public virtual bool IsActivation(NodeProto node) => false;

    public override string ToString() => string.Join("/", OpTypes);
}

/// <summary>LRP's treatment of a node.</summary>
public enum Relevance
{
    /// <summary>The generic ε-rule on the node's own function (linear layers, BN, pooling, sums, ReLU-like ops).</summary>
    Epsilon,
    /// <summary>Passed to the first input unchanged (non-homogeneous activations, reshapes).</summary>
    PassThrough,
    /// <summary>A gate product: all relevance goes to the input shaped like the output (Arras et al. 2017).</summary>
    Gate,
}

/// <summary>What a rule sees while inferring shapes.</summary>
public sealed class ShapeContext(NodeProto node, TensorInfo?[] inputs, OnnxGraph graph)
{
    public NodeProto Node { get; } = node;

    public TensorInfo?[] Inputs { get; } = inputs;

    public OnnxGraph Graph { get; } = graph;

    public long Opset => Graph.OpsetVersion;

    /// <summary>The first input, which every op with a data input has.</summary>
    public TensorInfo X => Inputs.Length > 0 && Inputs[0] is { } x ? x : throw new ShapeException("its first input is missing");

    public TensorInfo Required(int index, string what) =>
        index < Inputs.Length && Inputs[index] is { } info ? info : throw new ShapeException($"input {index} ({what}) is missing");

    public bool Has(int index) => index < Inputs.Length && Inputs[index] is not null;

    /// <summary>Integer values of an input known before run time (a constant, or computed from shapes), or null.</summary>
    public long[]? Ints(int index) => Has(index) ? Inputs[index]!.KnownValues : null;

    /// <summary>Float values of a constant input, or null.</summary>
    public float[]? Floats(int index) =>
        index < Node.Input.Count && Node.Input[index].Length > 0 && Graph.Constant(Node.Input[index]) is { } t
        && t.DataType == (int)TensorProto.Types.DataType.Float ? OnnxTensors.ReadFloats(t) : null;
}

/// <summary>A shape rule's complaint; the caller names the node.</summary>
public sealed class ShapeException(string message) : Exception(message);

/// <summary>
/// The channel analysis as a rule sees it. Every channel of every tensor has an id; a rule says how the ids of a node's
/// outputs relate to its inputs' by one of these behaviours.
/// </summary>
public interface IChannelFlow
{
    OnnxGraph Graph { get; }

    /// <summary>The static type of a tensor (shape and known integer values).</summary>
    TensorInfo Info(string tensor);

    /// <summary>The axis that carries tracked channels, or null when the tensor carries none.</summary>
    int? ChannelAxis(string tensor);

    /// <summary>The output carries the input's channels, at <paramref name="axis"/> if they move (default: the same axis).</summary>
    void Follow(string input, string output, int? axis = null);

    /// <summary>The output's channels along <paramref name="axis"/> are new: the node's filters.</summary>
    void Produce(NodeProto producer, string output, int axis, int count);

    /// <summary>The node reads its input's channels through a weight that loses slices with them (a consumer).</summary>
    void Consume(NodeProto consumer, string input);

    /// <summary>Element-wise with numpy broadcasting: channels at the same position of every input become one.</summary>
    void Merge(NodeProto node);

    /// <summary>Concatenation along <paramref name="axis"/>: the channels side by side, or tied when another axis.</summary>
    void Concatenate(NodeProto node, int axis);

    /// <summary>Constant channels added before and after the input's along its channel axis.</summary>
    void Pad(NodeProto node, long before, long after);

    /// <summary>[N, C, …] → [N, C·…]: feature f belongs to channel f / (positions per channel).</summary>
    void Flatten(string input, string output);

    /// <summary>The output holds the contiguous channels [start, start + count) of the input.</summary>
    void Part(string input, string output, int start, int count);

    /// <summary>The node's effect on channels cannot be followed: the channels it touches stay, for this reason.</summary>
    void Pin(NodeProto node, string why);
}

/// <summary>How a rule tells the pruner (or the cost prediction) what of its node changes when channels go.</summary>
public interface ISlicePlan
{
    OnnxGraph Graph { get; }

    TensorInfo Info(string tensor);

    int? ChannelAxis(string tensor);

    /// <summary>Which positions of the tensor's channel axis are kept, or null when it carries no tracked channels (or,
    /// with <paramref name="axis"/>, when they are not on that axis: the weight slice a rule asks for would not fit).</summary>
    bool[]? Kept(string tensor, int? axis = null);

    /// <summary>A constant input loses the positions of <paramref name="axis"/> that <paramref name="kept"/> drops.</summary>
    void SliceInput(NodeProto node, int input, int axis, bool[] kept);

    /// <summary>An integer attribute's new value (a depthwise convolution's group).</summary>
    void SetAttribute(NodeProto node, string name, long value);

    /// <summary>An integer-list attribute's new value (pads, split sizes, slice bounds in old opsets).</summary>
    void SetAttribute(NodeProto node, string name, long[] values);

    /// <summary>An int64 constant input's new value (added when the input was omitted).</summary>
    void ReplaceInput(NodeProto node, int input, long[] values);
}
