using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Optimizer.Pruning;
using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Data-driven channel importance, measured by running the model on a few batches:
/// <list type="bullet">
/// <item><b>taylor</b>: first-order Taylor estimate of the loss change when a channel is removed (Molchanov et al. 2017):
/// |mean over positions of activation × gradient|, averaged over images.</item>
/// <item><b>apoz</b>: 1 − average percentage of zeros after the channel's activation (Hu et al. 2016).</item>
/// <item><b>mean-act</b>: mean absolute activation after the channel's activation function.</item>
/// <item><b>lrp</b> / <b>lrp-zplus</b>: Layer-wise Relevance Propagation of the true class's logit back to the channels
/// (ε-rule, or z⁺-rule in Conv/Gemm/MatMul), summed over positions and images (Yeom et al. 2021; Balemans et al. 2022).</item>
/// </list>
/// Scores for every group are computed on the first request and cached. Channels are measured at the outputs of the
/// group's producers (Taylor, LRP) or of its activation functions (APoZ, mean activation), then aggregated over
/// coupled layers like the weight criteria.
/// </summary>
public sealed class ActivationImportance : IImportance
{
    public enum Criterion { Taylor, Apoz, MeanActivation, Lrp, LrpZPlus }

    readonly Criterion criterion;
    readonly Dataset data;
    readonly int batches, batchSize, seed;
    readonly ImportanceAggregation aggregation;
    readonly double epsilon;
    ChannelGroups? analysed;
    Dictionary<int, double[]>? scores;

    public ActivationImportance(Criterion criterion, Dataset data, int batches = 8, int batchSize = 64, int seed = 0,
                                ImportanceAggregation aggregation = ImportanceAggregation.Mean, double epsilon = 1e-2)
    {
        if (batches < 1 || batchSize < 1) throw new ArgumentException("batches and batch size must be positive");
        this.criterion = criterion;
        this.data = data;
        this.batches = batches;
        this.batchSize = batchSize;
        this.seed = seed;
        this.aggregation = aggregation;
        this.epsilon = epsilon;
    }

    public string Name => criterion switch
    {
        Criterion.Taylor => "taylor",
        Criterion.Apoz => "apoz",
        Criterion.MeanActivation => "mean-act",
        Criterion.Lrp => "lrp",
        _ => "lrp-zplus",
    };

    /// <summary>Criterion names accepted by <see cref="Parse"/>.</summary>
    public static readonly IReadOnlyList<string> Names = ["taylor", "apoz", "mean-act", "lrp", "lrp-zplus"];

    public static ActivationImportance? Parse(string name, Dataset data, int batches = 8, int seed = 0) =>
        CriterionOf(name) is { } criterion ? new(criterion, data, batches, seed: seed) : null;

    /// <summary>Whether <paramref name="name"/> is a data-driven criterion (or an alias of one).</summary>
    public static bool IsDataDriven(string name) => CriterionOf(name) is not null;

    static Criterion? CriterionOf(string name) => name.ToLowerInvariant() switch
    {
        "taylor" => Criterion.Taylor,
        "apoz" => Criterion.Apoz,
        "mean-act" or "mean-activation" => Criterion.MeanActivation,
        "lrp" or "lrp-epsilon" => Criterion.Lrp,
        "lrp-zplus" => Criterion.LrpZPlus,
        _ => null,
    };

    public double[] Score(ChannelGroups groups, ChannelGroup group)
    {
        if (!ReferenceEquals(analysed, groups) || scores is null)
        {
            scores = Measure(groups);
            analysed = groups;
        }
        return scores.TryGetValue(group.Index, out var s) ? s : new double[group.Size];
    }

    /// <summary>Per tensor of interest, a per-position statistic accumulated over batches; then mapped to group channels.</summary>
    Dictionary<int, double[]> Measure(ChannelGroups groups)
    {
        using var module = new OnnxModule(groups.Model);
        module.eval();
        var targets = TensorsOfInterest(groups);
        var sums = targets.ToDictionary(t => t, t => new double[groups.TryGetSpace(t, out var s) ? s.Ids.Length : 0]);
        long images = 0;
        int done = 0;
        foreach (var batch in data.Batches(batchSize, shuffle: true, seed))
        {
            if (done++ == batches) break;
            using var scope = NewDisposeScope();
            var (x, y) = Trainer.ToTensors(batch, data);
            if (criterion is Criterion.Lrp or Criterion.LrpZPlus) AccumulateRelevance(module, x, y, targets, sums);
            else AccumulateActivations(module, x, y, targets, sums);
            images += batch.Count;
        }
        if (images == 0) throw new ArgumentException("the dataset for data-driven importance is empty");

        var perChannel = new Dictionary<int, List<(string Layer, int Channel, double Score)>>();
        foreach (var (tensor, sum) in sums)
        {
            groups.TryGetSpace(tensor, out var space);
            for (int p = 0; p < sum.Length; p++)
            {
                var (group, channel) = groups.Locate(space.Ids[p]);
                if (group < 0) continue;
                if (!perChannel.TryGetValue(group, out var list)) perChannel[group] = list = [];
                list.Add((tensor, channel, sum[p] / images));
            }
        }
        return perChannel.ToDictionary(g => g.Key, g => WeightImportance.Aggregate(g.Value, groups.Groups[g.Key].Size, aggregation));
    }

    /// <summary>The tensors where each prunable group's channels are measured (4-D or 2-D activations along the channel axis).</summary>
    List<string> TensorsOfInterest(ChannelGroups groups)
    {
        var graph = groups.Graph;
        var result = new List<string>();
        foreach (var group in groups.Prunable)
        {
            bool Belongs(string tensor) => groups.TryGetSpace(tensor, out var s) && s.Axis == 1
                                           && s.Ids.Length == groups.Shapes[tensor].Shape[1] && s.Ids.Any(id => groups.Locate(id).Group == group.Index);
            var producers = graph.Nodes.Where(n => group.Producers.Contains(graph.NameOf(n)) && Belongs(n.Output[0])).Select(n => n.Output[0]).ToList();
            var activations = graph.Nodes.Where(n => OpRegistry.Find(n)?.IsActivation(n) == true && Belongs(n.Output[0]))
                                         .Select(n => n.Output[0]).ToList();
            var chosen = criterion is Criterion.Apoz or Criterion.MeanActivation && activations.Count > 0 ? activations
                       : producers.Count > 0 ? producers : activations;
            result.AddRange(chosen.Where(t => !result.Contains(t)));
        }
        return result;
    }

    void AccumulateActivations(OnnxModule module, Tensor x, Tensor y, List<string> targets, Dictionary<string, double[]> sums)
    {
        bool needGradient = criterion == Criterion.Taylor;
        using var gradMode = needGradient ? null : no_grad();
        var (output, captured) = module.ForwardCapturing(x, targets);
        Tensor[]? gradients = null;
        var present = targets.Where(captured.ContainsKey).ToList();
        if (needGradient)
        {
            var loss = nn.functional.cross_entropy(output, y, reduction: nn.Reduction.Sum);
            present = present.Where(t => captured[t].requires_grad).ToList(); // libtorch aborts the process on grad of a constant
            gradients = torch.autograd.grad([loss], present.Select(t => captured[t]).ToList()).ToArray();
        }
        for (int i = 0; i < present.Count; i++)
        {
            var a = captured[present[i]].detach();
            var reduceDims = Enumerable.Range(2, (int)a.dim() - 2).Select(d => (long)d).ToArray();
            Tensor PerImage(Tensor t) => reduceDims.Length > 0 ? t.mean(reduceDims) : t; // per image and channel
            Tensor perImage = criterion switch
            {
                Criterion.Taylor => PerImage(a * gradients![i]).abs(),
                Criterion.Apoz => PerImage(a.Above(0).to_type(ScalarType.Float32)), // 1 − APoZ: the share of non-zero outputs
                _ => PerImage(a.abs()),
            };
            // Summed over the batch here, divided by the number of images at the end.
            perImage = perImage.sum(0L);
            Add(sums[present[i]], perImage);
        }
    }

    /// <summary>
    /// LRP by the generic rule: for each node, backwards, with its activation inputs a as fresh leaves, z = node(a),
    /// s = R / (z + ε·sign z), c = ∂z/∂a · s, R_a = a·c. On Conv/Gemm/MatMul/BN/pooling/Add this is the ε-rule; on
    /// ReLU-like ops it passes relevance through unchanged. Non-homogeneous activations pass it through; a gate Mul
    /// gives it all to the signal (Arras et al. 2017). z⁺: Conv/Gemm/MatMul use only positive weights and no bias.
    /// </summary>
    void AccumulateRelevance(OnnxModule module, Tensor x, Tensor y, List<string> targets, Dictionary<string, double[]> sums)
    {
        Tensor?[] values;
        using (no_grad()) values = module.RunAll(x);
        var relevance = new Tensor?[values.Length];
        var logits = values[module.OutputSlot]!;
        relevance[module.OutputSlot] = logits * nn.functional.one_hot(y, logits.shape[1]).to_type(ScalarType.Float32);
        var targetSlots = targets.Select(t => (Tensor: t, Slot: module.SlotOf(t))).Where(t => t.Slot is not null).ToDictionary(t => t.Slot!.Value, t => t.Tensor);
        var context = new RunContext(false, -1, module.ChannelsLast, module.Kernels);

        foreach (var node in module.CompiledNodes.Reverse())
        {
            int outSlot = node.Outputs[0];
            if (outSlot < 0 || relevance[outSlot] is not { } r) continue;
            if (targetSlots.TryGetValue(outSlot, out var name))
            {
                var reduceDims = Enumerable.Range(2, (int)r.dim() - 2).Select(d => (long)d).ToArray();
                Add(sums[name], (reduceDims.Length > 0 ? r.sum(reduceDims) : r).sum(0L));
            }
            var activationInputs = node.Inputs.Select((slot, k) => (Slot: slot, Index: k))
                .Where(i => i.Slot >= 0 && !module.IsConstantSlot(i.Slot) && values[i.Slot] is { } v && v.is_floating_point()).ToList();
            if (activationInputs.Count == 0) continue;

            var rule = node.Rule;
            if (rule.LrpRule(node.Node) == Relevance.PassThrough)
            {
                AddRelevance(relevance, activationInputs[0].Slot, r);
                continue;
            }
            if (rule.LrpRule(node.Node) == Relevance.Gate && activationInputs.Count == 2)
            {
                // Signal-take-all: the input shaped like the output is the signal, the other the gate.
                var signal = activationInputs.First(i => values[i.Slot]!.shape.SequenceEqual(r.shape));
                AddRelevance(relevance, signal.Slot, r);
                continue;
            }

            var inputs = node.Inputs.Select(slot => slot < 0 ? null : values[slot]).ToArray();
            var leaves = new List<(int Slot, Tensor Leaf)>();
            foreach (var (slot, index) in activationInputs)
            {
                var leaf = values[slot]!.detach().requires_grad_(true);
                inputs[index] = leaf;
                leaves.Add((slot, leaf));
            }
            if (criterion == Criterion.LrpZPlus && rule.FilterWeight(node.Node) is var (weightInput, _) && inputs.Length > weightInput && inputs[weightInput] is { } w)
            {
                inputs[weightInput] = w.Clamp(0, null);
                if (inputs.Length > 2) inputs[2] = null; // no bias
            }
            using var enableGrad = enable_grad();
            var z = node.Run(inputs, context)[0];
            if (!z.requires_grad) continue; // does not depend on an activation (libtorch aborts the process on grad of such a tensor)
            var stabilised = z.Plus(torch.where(z.AtLeast(0), torch.ones_like(z), -torch.ones_like(z)).Times(epsilon));
            var s = (r / stabilised).detach();
            var gradients = torch.autograd.grad([z], leaves.Select(l => l.Leaf).ToList(), [s], allow_unused: true);
            for (int i = 0; i < leaves.Count; i++)
                if (gradients[i] is { } g && g.numel() > 0) AddRelevance(relevance, leaves[i].Slot, (leaves[i].Leaf * g).detach());
        }
    }

    static void AddRelevance(Tensor?[] relevance, int slot, Tensor value) =>
        relevance[slot] = relevance[slot] is { } existing ? existing.Plus(value) : value;

    static void Add(double[] sum, Tensor perPosition)
    {
        var values = perPosition.to_type(ScalarType.Float64).data<double>().ToArray();
        for (int i = 0; i < sum.Length && i < values.Length; i++) sum[i] += values[i];
    }
}
