using System.Runtime.InteropServices;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// An ONNX graph as a trainable TorchSharp module. Learnable initializers (those <see cref="ModelCost"/> counts as
/// parameters) become parameters, BN running statistics become buffers, other constants stay constants; nodes run in
/// topological order. <see cref="WriteBack"/> returns the ONNX model with the trained values, so nothing is lost
/// between the file and the training. Passes can run channels-last (NHWC memory, NCHW shape) where the kernels
/// <see cref="TorchRuntime"/> chose run fastest that way; shapes, values and results are the same.
/// </summary>
public sealed class OnnxModule : nn.Module<Tensor, Tensor>
{
    readonly ModelProto source;
    readonly CompiledNode[] nodes;
    readonly int slotCount;
    readonly int inputSlot;
    readonly int outputSlot;
    readonly Dictionary<string, int> slots;
    readonly (int Slot, Tensor Value)[] constants;
    readonly Dictionary<string, Parameter> learnables = new(StringComparer.Ordinal);
    readonly Dictionary<string, Tensor> statistics = new(StringComparer.Ordinal);

    /// <summary>BN layers update their running statistics as a cumulative average (batch k weighs 1/k): recalibration.</summary>
    internal int RecalibrationStep { get; set; } = -1;

    /// <summary>Builds the module with the kernels and layout this machine trains with (decided here on first use:
    /// <see cref="TorchRuntime.UseKernelsFor"/>).</summary>
    public OnnxModule(ModelProto model) : this(model, channelsLast: false)
    {
        TorchRuntime.UseKernelsFor(model, Environment.ProcessorCount);
    }

    /// <summary>Builds the module in the given layout, deciding nothing (the kernel self-check runs every mode).</summary>
    internal OnnxModule(ModelProto model, bool channelsLast) : base("OnnxModule")
    {
        TorchRuntime.EnsureInitialized();
        ChannelsLast = channelsLast;
        source = model.Clone();
        var graph = new OnnxGraph(source);
        if (graph.Inputs.Count != 1 || graph.Outputs.Count < 1)
            throw new OnnxModelException($"training needs a model with one input and one output; this one has {graph.Inputs.Count} inputs and {graph.Outputs.Count} outputs");
        foreach (var node in graph.Nodes)
            if (!OnnxModel.IsDefaultDomain(node.Domain) || !Ops.OpTypes.Contains(node.OpType))
                throw new OnnxModelException($"op '{node.OpType}' is not supported by the training engine (supported: {string.Join(", ", Ops.OpTypes.Order())})",
                                             graph.NameOf(node), node.OpType);

        slots = new Dictionary<string, int>(StringComparer.Ordinal);
        int Slot(string name) => slots.TryGetValue(name, out int s) ? s : slots[name] = slots.Count;

        var learnable = LearnableInitializers(graph);
        var statisticNames = graph.Nodes.Where(n => n.OpType == "BatchNormalization").SelectMany(n => n.Input.Skip(3).Take(2)).ToHashSet();
        var constantList = new List<(int, Tensor)>();
        foreach (var initializer in source.Graph.Initializer)
        {
            var tensor = ToTensor(initializer);
            string registered = RegisteredName(initializer.Name);
            if (learnable.Contains(initializer.Name))
            {
                var parameter = new Parameter(tensor, requires_grad: true);
                register_parameter(registered, parameter);
                learnables[initializer.Name] = parameter;
                constantList.Add((Slot(initializer.Name), parameter));
            }
            else
            {
                register_buffer(registered, tensor, persistent: statisticNames.Contains(initializer.Name));
                if (statisticNames.Contains(initializer.Name)) statistics[initializer.Name] = tensor;
                constantList.Add((Slot(initializer.Name), tensor));
            }
        }
        foreach (var node in graph.Nodes.Where(n => n.OpType == "Constant"))
        {
            var tensor = ToTensor(graph.Constant(node.Output[0])!);
            register_buffer(RegisteredName(node.Output[0]), tensor, persistent: false);
            constantList.Add((Slot(node.Output[0]), tensor));
        }
        constants = constantList.ToArray();
        inputSlot = Slot(graph.Inputs[0].Name);
        var compiled = new List<CompiledNode>();
        foreach (var node in graph.Nodes)
        {
            if (node.OpType == "Constant") continue;
            var inputs = node.Input.Select(i => i.Length == 0 ? -1 : Slot(i)).ToArray();
            var outputs = node.Output.Select(o => o.Length == 0 ? -1 : Slot(o)).ToArray();
            compiled.Add(new CompiledNode(graph.NameOf(node), node, OpRegistry.Find(node)!, inputs, outputs, Ops.Compile(node, graph, this)));
        }
        nodes = compiled.ToArray();
        outputSlot = Slot(graph.Outputs[0].Name);
        slotCount = slots.Count;
    }

    /// <summary>The model this module was made from (unchanged).</summary>
    public ModelProto Source => source;

    /// <summary>This module's own random numbers (dropout): trainings running side by side in one process neither race
    /// on libtorch's global generator nor change each other's draws. <see cref="Trainer.Train"/> seeds it.</summary>
    internal Generator Random { get; } = new(0);

    /// <summary>Whether passes run channels-last (see the class summary): the input and each convolution's weight are
    /// copied into NHWC memory as they enter (parameters stay NCHW, so the layout can change between trainings), and
    /// the outputs of convolutions keep that layout through the ops that follow.</summary>
    internal bool ChannelsLast { get; set; }

    /// <summary>Which kernel each convolution runs on (checked per signature, or forced), and which ran.</summary>
    public ConvKernelPlan Kernels { get; set; } = new();

    public override Tensor forward(Tensor input) => Run(input)[outputSlot]!;

    /// <summary>
    /// The same values with NHWC strides, forced explicitly: libtorch infers a tensor's layout from its strides, and
    /// with one channel (grey images, depthwise weights) a permute-and-copy leaves NCHW strides, so convolutions would
    /// fall back to NCHW kernels and reorder on every call. A copy, so gradients flow through it.
    /// </summary>
    internal static Tensor ToChannelsLast(Tensor tensor)
    {
        var s = tensor.shape;
        var result = empty_strided(s, [s[1] * s[2] * s[3], 1, s[3] * s[1], s[1]], tensor.dtype);
        result.copy_(tensor);
        return result;
    }

    /// <summary>Runs the graph and also returns the named intermediate tensors (activations for data-driven importance).</summary>
    public (Tensor Output, Dictionary<string, Tensor> Captured) ForwardCapturing(Tensor input, IEnumerable<string> tensors)
    {
        var values = Run(input);
        var captured = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (string name in tensors)
            if (slots.TryGetValue(name, out int slot) && values[slot] is { } value) captured[name] = value;
        return (values[outputSlot]!, captured);
    }

    /// <summary>Every tensor of one forward pass, by slot (see <see cref="SlotOf"/>).</summary>
    internal Tensor?[] RunAll(Tensor input) => Run(input);

    internal int? SlotOf(string tensor) => slots.TryGetValue(tensor, out int slot) ? slot : null;

    internal int OutputSlot => outputSlot;

    /// <summary>The compiled nodes in execution order, for analyses that replay single nodes (LRP).</summary>
    internal IReadOnlyList<CompiledNode> CompiledNodes => nodes;

    internal bool IsConstantSlot(int slot) => constantSlots.Contains(slot);

    HashSet<int>? constantSlotSet;
    HashSet<int> constantSlots => constantSlotSet ??= constants.Select(c => c.Slot).ToHashSet();

    Tensor?[] Run(Tensor input)
    {
        var values = new Tensor?[slotCount];
        foreach (var (slot, value) in constants) values[slot] = value;
        values[inputSlot] = ChannelsLast && input.dim() == 4 ? ToChannelsLast(input) : input;
        var context = new RunContext(training, RecalibrationStep, ChannelsLast, Kernels);
        foreach (var node in nodes)
        {
            var inputs = new Tensor?[node.Inputs.Length];
            for (int i = 0; i < inputs.Length; i++) inputs[i] = node.Inputs[i] < 0 ? null : values[node.Inputs[i]];
            Tensor[] outputs;
            try
            {
                outputs = node.Run(inputs, context);
            }
            catch (Exception e) when (e is ExternalException or ArgumentException or InvalidOperationException)
            {
                throw new OnnxModelException($"failed in training engine: {e.Message}", node.Name, node.OpType, e);
            }
            for (int o = 0; o < node.Outputs.Length && o < outputs.Length; o++)
                if (node.Outputs[o] >= 0) values[node.Outputs[o]] = outputs[o];
        }
        return values;
    }

    /// <summary>The source model with every parameter and BN running statistic replaced by its current value.</summary>
    public ModelProto WriteBack()
    {
        var model = source.Clone();
        // Provenance: which convolution kernels trained these weights, and the evidence they were right here. A module that ran
        // no convolution keeps what its source recorded (a reloaded model writes back the same bytes).
        if (TorchRuntime.Decision is { } kernels && Kernels.Used.Count > 0)
            OnnxModel.SetMetadata(model, "paretoprune.kernels",
                                  $"{Kernels.Describe()}{(TorchRuntime.OneDnnMode.Cap() is { } isa ? $"; oneDNN capped at {isa}" : "")}; chosen: {kernels}");
        var initializers = model.Graph.Initializer;
        for (int i = 0; i < initializers.Count; i++)
        {
            Tensor? current = learnables.TryGetValue(initializers[i].Name, out var p) ? p : statistics.GetValueOrDefault(initializers[i].Name);
            if (current is null) continue;
            using var cpu = current.detach().cpu().contiguous();
            initializers[i] = OnnxTensors.CreateFloat(initializers[i].Name, initializers[i].Dims.ToArray(), cpu.data<float>().ToArray());
        }
        return model;
    }

    /// <summary>Parameters by their ONNX initializer names.</summary>
    public IReadOnlyDictionary<string, Parameter> NamedParameters => learnables;

    /// <summary>BN running statistics by their ONNX initializer names.</summary>
    public IReadOnlyDictionary<string, Tensor> Statistics => statistics;

    /// <summary>Copies all parameter and statistic values (for early stopping's best epoch).</summary>
    internal Dictionary<string, Tensor> Snapshot()
    {
        using var noGrad = no_grad();
        return learnables.Select(p => (p.Key, (Tensor)p.Value)).Concat(statistics.Select(b => (b.Key, b.Value)))
                         .ToDictionary(p => p.Item1, p => p.Item2.detach().clone().DetachFromDisposeScope());
    }

    internal void Restore(Dictionary<string, Tensor> snapshot)
    {
        using var noGrad = no_grad();
        foreach (var (name, value) in snapshot)
        {
            Tensor target = learnables.TryGetValue(name, out var p) ? p : statistics[name];
            target.copy_(value);
        }
    }

    static HashSet<string> LearnableInitializers(OnnxGraph graph)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            foreach (int s in OpRegistry.LearnableInputs(node))
                if (s < node.Input.Count && graph.IsInitializer(node.Input[s])
                    && graph.Constant(node.Input[s])!.DataType == (int)TensorProto.Types.DataType.Float)
                    result.Add(node.Input[s]);
        }
        return result;
    }

    internal static Tensor ToTensor(TensorProto tensor)
    {
        var dims = tensor.Dims.ToArray();
        return (TensorProto.Types.DataType)tensor.DataType switch
        {
            TensorProto.Types.DataType.Float => torch.tensor(OnnxTensors.ReadFloats(tensor), dims, ScalarType.Float32),
            TensorProto.Types.DataType.Int64 or TensorProto.Types.DataType.Int32 => torch.tensor(OnnxTensors.ReadInt64s(tensor), dims, ScalarType.Int64),
            _ => throw new OnnxModelException($"tensor '{tensor.Name}' has data type {OnnxTensors.DataTypeName(tensor.DataType)}, which training does not support"),
        };
    }

    /// <summary>TorchSharp, like PyTorch, forbids '.' in parameter names; ONNX names use them freely.</summary>
    string RegisteredName(string onnxName)
    {
        string name = new(onnxName.Select(c => char.IsLetterOrDigit(c) || c == '_' ? c : '_').ToArray());
        string unique = name;
        for (int i = 1; registeredNames.Contains(unique); i++) unique = $"{name}_{i}";
        registeredNames.Add(unique);
        return unique;
    }

    readonly HashSet<string> registeredNames = new(StringComparer.Ordinal);

    internal sealed record CompiledNode(string Name, NodeProto Node, OpRule Rule, int[] Inputs, int[] Outputs, Func<Tensor?[], RunContext, Tensor[]> Run)
    {
        public string OpType => Node.OpType;
    }
}

/// <summary>What a node needs to know about the current pass.</summary>
internal readonly record struct RunContext(bool Training, int RecalibrationStep, bool ChannelsLast, ConvKernelPlan Kernels);
