using System.Text.Json.Serialization;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Comparison;

/// <summary>Structured pruning removes channels (the model gets smaller and faster); unstructured zeroes single weights;
/// none leaves the weights as they are (INT8 quantisation alone).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<PruningFamily>))]
public enum PruningFamily { Structured, Unstructured, None }

/// <summary>
/// One way to prune at a given amount. Structured methods (a channel criterion: l1, l2, fpgm, bn, random, taylor, apoz,
/// mean-act, lrp, lrp-zplus) remove that fraction of the channels of every prunable group
/// (<see cref="ChannelSelection.Uniform"/>): the same widths for every criterion, so that criteria differ only in which
/// channels they keep. Unstructured methods (magnitude-global: one threshold over all layers; magnitude-layer: the same
/// sparsity in each layer) zero that fraction of the Conv, Gemm and MatMul weights. <c>int8</c> quantizes the unpruned
/// model (<see cref="Int8Quantizer"/>; one point, at amount 0), and any method followed by <c>+int8</c> (<c>l1+int8</c>)
/// quantizes what that method pruned and fine-tuned.
/// </summary>
public sealed record PruningMethod
{
    PruningMethod(string name, PruningFamily family, string description, bool quantized = false, ChannelCriterion? criterion = null)
    {
        Name = name;
        Family = family;
        Description = description;
        Quantized = quantized;
        Criterion = criterion;
    }

    public string Name { get; }
    public PruningFamily Family { get; }

    /// <summary>The channel criterion of a structured method (the same type the search ranks channels by); null otherwise.</summary>
    public ChannelCriterion? Criterion { get; }

    /// <summary>What the method does, in words, for reports.</summary>
    public string Description { get; }

    /// <summary>Whether the deployed model is quantized to INT8 after pruning and fine-tuning.</summary>
    public bool Quantized { get; }

    /// <summary>Whether the method prunes at each amount (all but <c>int8</c> alone, which has one point).</summary>
    public bool Prunes => Family != PruningFamily.None;

    /// <summary>Whether choosing what to prune runs the model on training data (Taylor, APoZ, LRP…).</summary>
    public bool NeedsData => Criterion is { NeedsData: true };

    /// <summary>Every name <see cref="Parse"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = [MagnitudeGlobal, MagnitudeLayer, .. ImportanceCriteria.Names, Int8];

    /// <summary>The methods of the original study: two unstructured, seven structured criteria.</summary>
    public static IReadOnlyList<PruningMethod> Default { get; } =
        new[] { "magnitude-global", "magnitude-layer", "l1", "l2", "fpgm", "bn", "taylor", "apoz", "lrp" }.Select(Parse).ToList();

    const string MagnitudeGlobal = "magnitude-global", MagnitudeLayer = "magnitude-layer", Int8 = "int8", QuantizedSuffix = "+int8";

    /// <exception cref="ArgumentException">Not a method; the message lists the known ones.</exception>
    public static PruningMethod Parse(string name)
    {
        string key = name.Trim().ToLowerInvariant();
        if (key.EndsWith(QuantizedSuffix, StringComparison.Ordinal) && key != QuantizedSuffix)
        {
            var pruning = Parse(key[..^QuantizedSuffix.Length]);
            if (!pruning.Prunes || pruning.Quantized) throw new ArgumentException($"'{name}': {QuantizedSuffix} follows a pruning method, once (e.g. l1{QuantizedSuffix})");
            return new(key, pruning.Family, pruning.Description + ", then quantized to INT8", quantized: true, pruning.Criterion);
        }
        return key switch
        {
            Int8 => new(key, PruningFamily.None, "no pruning: the model quantized to INT8 (static, QDQ)", quantized: true),
            MagnitudeGlobal => new(key, PruningFamily.Unstructured, "unstructured: smallest weights zeroed, one magnitude threshold over all layers"),
            MagnitudeLayer => new(key, PruningFamily.Unstructured, "unstructured: smallest weights zeroed, the same sparsity in every layer"),
            _ when ImportanceCriteria.Names.Contains(key) => new(key, PruningFamily.Structured,
                $"structured: the same fraction of channels removed from every prunable group, the lowest by {key} importance", criterion: ChannelCriterion.Parse(key)),
            _ => throw new ArgumentException($"unknown pruning method '{name}'; methods are {string.Join(", ", Names)}, and any of them but int8 followed by {QuantizedSuffix}"),
        };
    }

    /// <summary>A comma-separated list of methods, in order, each once.</summary>
    public static IReadOnlyList<PruningMethod> ParseList(string names)
    {
        var methods = names.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(Parse).ToList();
        if (methods.Count == 0) throw new ArgumentException($"no pruning method given; methods are {string.Join(", ", Names)}");
        if (methods.GroupBy(m => m.Name).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"pruning method '{twice.Key}' is listed twice");
        return methods;
    }

    /// <summary>Readies the method for one model: groups and channel scores are computed once, then shared by every amount.</summary>
    internal Pruner Prepare(ModelProto model, Dataset train, int importanceBatches, int seed, int roundTo = 1) => Family switch
    {
        PruningFamily.None => new Pruner(_ => new PrunedModel(model, [])),
        PruningFamily.Unstructured => new Pruner(amount =>
        {
            var (pruned, layers) = UnstructuredPruner.Prune(model, amount, Name.StartsWith(MagnitudeGlobal, StringComparison.Ordinal) ? SparsityScope.Global : SparsityScope.PerLayer);
            return new PrunedModel(pruned, layers.Select(l => l.Weight).ToList());
        }),
        _ => Structured(model, train, importanceBatches, seed, roundTo),
    };

    Pruner Structured(ModelProto model, Dataset train, int importanceBatches, int seed, int roundTo)
    {
        var selection = new ChannelSelection(ChannelGroups.Analyze(model), Criterion!.Create(train, importanceBatches, seed));
        return new Pruner(amount => new PrunedModel(StructuredPruner.Prune(selection.Uniform(amount, roundTo)), []));
    }

    internal sealed record Pruner(Func<double, PrunedModel> Prune);

    /// <param name="SparseWeights">Weights whose zeros fine-tuning must keep (unstructured pruning).</param>
    internal sealed record PrunedModel(ModelProto Model, IReadOnlyList<string> SparseWeights);
}
