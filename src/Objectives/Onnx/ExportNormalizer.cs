using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Onnx;

/// <summary>What <see cref="ExportNormalizer"/> changed in a model, for <c>inspect</c> to report.</summary>
public sealed record Normalization(int IdentitiesRemoved, int SharedInitializersSplit, int NodesFolded, int InputsDropped)
{
    public bool Changed => IdentitiesRemoved + SharedInitializersSplit + NodesFolded + InputsDropped > 0;

    public override string ToString() => string.Join(", ", new[]
    {
        IdentitiesRemoved > 0 ? $"{IdentitiesRemoved} Identity node(s) of constants bypassed" : null,
        SharedInitializersSplit > 0 ? $"{SharedInitializersSplit} shared initializer(s) given one copy per consumer" : null,
        NodesFolded > 0 ? $"{NodesFolded} constant node(s) folded" : null,
        InputsDropped > 0 ? $"{InputsDropped} initializer(s) removed from the graph inputs" : null,
    }.Where(s => s is not null));
}

/// <summary>
/// Rewrites what exporters write into the plain form the analysis and the pruner expect, without changing what the
/// model computes:
/// <list type="bullet">
/// <item>initializers also listed as graph inputs (IR version &lt; 4) are no longer inputs;</item>
/// <item>an Identity of a constant is bypassed: its consumers read the constant;</item>
/// <item>nodes computed from constants only are folded into initializers (by ONNX Runtime itself);</item>
/// <item>an initializer of more than one element read by several nodes gets one copy per node. Exporters deduplicate
/// equal tensors (the zero biases of a fresh model, equal folded BN terms): a storage saving, not weight tying, and one
/// tensor cannot be sliced two ways when pruning removes different channels in each layer.</item>
/// </list>
/// </summary>
public static class ExportNormalizer
{
    /// <summary>The normalised model: <paramref name="model"/> itself when nothing needed changing, else a changed copy.</summary>
    public static ModelProto Normalize(ModelProto model) => Normalize(model, out _);

    public static ModelProto Normalize(ModelProto model, out Normalization changes)
    {
        changes = new Normalization(0, 0, 0, 0);
        if (!MayNeedChanges(model)) return model; // the common case, without copying the weights
        var copy = model.Clone();
        int inputs = DropInitializerInputs(copy);
        int identities = BypassConstantIdentities(copy);
        int folded = FoldConstants(copy);
        int split = SplitSharedInitializers(copy);
        changes = new Normalization(identities, split, folded, inputs);
        return changes.Changed ? copy : model;
    }

    /// <summary>A quick scan for anything a rewrite would touch.</summary>
    static bool MayNeedChanges(ModelProto model)
    {
        var graph = model.Graph;
        var initializers = graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        if (graph.Input.Any(i => initializers.Contains(i.Name))) return true;
        var constants = new HashSet<string>(initializers, StringComparer.Ordinal);
        foreach (var node in graph.Node)
            if (node.OpType == "Constant") constants.UnionWith(node.Output);
        var multiElement = graph.Initializer.Where(i => OnnxTensors.ElementCount(i) > 1).Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var readers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            if (Foldable(node) && node.Input.Count > 0 && node.Input.All(i => i.Length == 0 || constants.Contains(i))) return true; // Identity of a constant, or foldable
            foreach (string input in node.Input.Distinct())
                if (multiElement.Contains(input) && (readers[input] = readers.GetValueOrDefault(input) + 1) > 1) return true;
        }
        return false;
    }

    static int DropInitializerInputs(ModelProto model)
    {
        var names = model.Graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var kept = model.Graph.Input.Where(i => !names.Contains(i.Name)).ToList();
        int dropped = model.Graph.Input.Count - kept.Count;
        if (dropped > 0)
        {
            model.Graph.Input.Clear();
            model.Graph.Input.Add(kept);
        }
        return dropped;
    }

    static int BypassConstantIdentities(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        var bypass = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var node in graph.Nodes)
        {
            if (node.OpType != "Identity" || !OnnxModel.IsDefaultDomain(node.Domain) || node.Input.Count != 1) continue;
            string source = bypass.GetValueOrDefault(node.Input[0], node.Input[0]);
            if (!graph.IsConstant(source) || graph.IsGraphOutput(node.Output[0])) continue;
            bypass[node.Output[0]] = source;
        }
        if (bypass.Count == 0) return 0;
        var nodes = model.Graph.Node.Where(n => !(n.OpType == "Identity" && n.Output.Count == 1 && bypass.ContainsKey(n.Output[0]))).ToList();
        foreach (var node in nodes)
            for (int i = 0; i < node.Input.Count; i++)
                if (bypass.TryGetValue(node.Input[i], out var source)) node.Input[i] = source;
        model.Graph.Node.Clear();
        model.Graph.Node.Add(nodes);
        return bypass.Count;
    }

    static int SplitSharedInitializers(ModelProto model)
    {
        var initializers = model.Graph.Initializer.Where(i => OnnxTensors.ElementCount(i) > 1).ToDictionary(i => i.Name, StringComparer.Ordinal);
        var readers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in model.Graph.Node)
            foreach (string input in node.Input.Distinct())
                if (initializers.ContainsKey(input))
                {
                    if (!readers.TryGetValue(input, out var list)) readers[input] = list = [];
                    list.Add(node);
                }
        int split = 0;
        foreach (var (name, nodes) in readers)
        {
            if (nodes.Count < 2) continue;
            split++;
            foreach (var node in nodes.Skip(1))
            {
                var copy = initializers[name].Clone();
                copy.Name = OnnxModel.UniqueName(model, $"{name}_{(node.Name.Length > 0 ? node.Name : node.OpType)}");
                model.Graph.Initializer.Add(copy);
                for (int i = 0; i < node.Input.Count; i++)
                    if (node.Input[i] == name) node.Input[i] = copy.Name;
            }
        }
        return split;
    }

    /// <summary>Constant nodes stay as they are, and so does DequantizeLinear: a quantized (QDQ) model keeps its weights as
    /// integers on purpose, and folding would turn them back into floats.</summary>
    static bool Foldable(NodeProto node) => node.OpType is not ("Constant" or "DequantizeLinear");

    /// <summary>Nodes whose inputs are all constants (and that read no graph input) are computed once, by ONNX Runtime,
    /// and replaced by initializers holding their outputs. Constant nodes themselves are left as they are.</summary>
    static int FoldConstants(ModelProto model)
    {
        var graph = new OnnxGraph(model);
        var constant = new HashSet<string>(model.Graph.Initializer.Select(i => i.Name), StringComparer.Ordinal);
        var folded = new List<NodeProto>();
        foreach (var node in graph.Nodes)
        {
            bool allConstant = node.Input.All(i => i.Length == 0 || constant.Contains(i) || graph.Producer(i)?.OpType == "Constant");
            if (!Foldable(node) || !OnnxModel.IsDefaultDomain(node.Domain) || node.Input.Count == 0 || !allConstant) continue;
            folded.Add(node);
            foreach (string output in node.Output) if (output.Length > 0) constant.Add(output);
        }
        if (folded.Count == 0) return 0;

        // Outputs read by nodes that stay, or by the graph.
        var foldedSet = folded.ToHashSet(ReferenceEqualityComparer.Instance);
        var needed = folded.SelectMany(n => n.Output).Where(o => o.Length > 0
            && (graph.IsGraphOutput(o) || graph.Consumers(o).Any(c => !foldedSet.Contains(c)))).Distinct().ToList();
        var values = Evaluate(model, graph, folded, needed);
        if (values is null) return 0;

        var nodes = model.Graph.Node.Where(n => !foldedSet.Contains(n)).ToList();
        model.Graph.Node.Clear();
        model.Graph.Node.Add(nodes);
        model.Graph.Initializer.Add(values);
        // Initializers only the folded nodes read are gone with them.
        var read = nodes.SelectMany(n => n.Input).Concat(model.Graph.Output.Select(o => o.Name)).ToHashSet(StringComparer.Ordinal);
        var unused = model.Graph.Initializer.Where(i => !read.Contains(i.Name)).ToList();
        foreach (var tensor in unused) model.Graph.Initializer.Remove(tensor);
        return folded.Count;
    }

    /// <summary>Runs the folded nodes alone in ONNX Runtime; null when it cannot (an op it refuses, an unsupported type),
    /// in which case the model is left unfolded.</summary>
    static List<TensorProto>? Evaluate(ModelProto model, OnnxGraph graph, List<NodeProto> nodes, List<string> outputs)
    {
        var sub = new ModelProto { IrVersion = model.IrVersion, Graph = new GraphProto { Name = "fold" } };
        sub.OpsetImport.Add(model.OpsetImport);
        sub.Graph.Node.Add(graph.Nodes.Where(n => n.OpType == "Constant").Select(n => n.Clone()));
        sub.Graph.Node.Add(nodes.Select(n => n.Clone()));
        var read = nodes.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        sub.Graph.Initializer.Add(model.Graph.Initializer.Where(i => read.Contains(i.Name)).Select(i => i.Clone()));
        foreach (string output in outputs) sub.Graph.Output.Add(new ValueInfoProto { Name = output });
        try
        {
            using var session = new InferenceSession(OnnxModel.ToBytes(sub));
            using var results = session.Run([]);
            var tensors = new List<TensorProto>();
            foreach (var result in results)
            {
                TensorProto? tensor = result.Value switch
                {
                    Tensor<float> t => OnnxTensors.CreateFloat(result.Name, t.Dimensions.ToArray().Select(d => (long)d).ToArray(), t.ToArray()),
                    Tensor<long> t => OnnxTensors.CreateInt64(result.Name, t.Dimensions.ToArray().Select(d => (long)d).ToArray(), t.ToArray()),
                    _ => null,
                };
                if (tensor is null) return null;
                tensors.Add(tensor);
            }
            return tensors;
        }
        catch (OnnxRuntimeException)
        {
            return null;
        }
    }
}
