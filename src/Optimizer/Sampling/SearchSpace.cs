using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>How a model's channel groups become search dimensions.</summary>
public sealed record SearchSpaceOptions
{
    /// <summary>The smallest kept fraction a dimension may take (every group keeps at least one channel anyway).</summary>
    public double MinKeepFraction { get; init; } = 0.1;

    /// <summary>Kept counts are rounded to this multiple (8 or 16 helps SIMD runtimes; 1 searches every count).</summary>
    public int RoundTo { get; init; } = 1;

    /// <summary>
    /// One dimension per channel width instead of per group: groups of equal size (a ResNet stage's inner convs) are
    /// cut alike. Fewer dimensions, so the search learns faster on deep networks, at the cost of per-layer freedom.
    /// </summary>
    public bool TieEqualSizedGroups { get; init; }

    /// <summary>
    /// Ablation lever of the allocation benchmark (bench/RESULTS.md), not persisted with a study: with
    /// <see cref="TieEqualSizedGroups"/>, a residual stream (a group several convolutions produce, tied by the additions
    /// between them) stays a dimension apart from the block-inner groups of its width: a ResNet's stage gets two
    /// dimensions, its stream and its blocks' inner channels, instead of one.
    /// </summary>
    internal bool TieStreamsApart { get; init; }

    internal void Validate()
    {
        if (MinKeepFraction is <= 0 or > 1) throw new ArgumentException($"the minimum kept fraction must be in (0, 1], got {MinKeepFraction}");
        if (RoundTo < 1) throw new ArgumentException($"rounding must be at least 1, got {RoundTo}");
    }
}

/// <summary>One search dimension: the channel groups it cuts (all of the same size when tied) and its range of kept counts.</summary>
public sealed record SearchDimension(string Name, IReadOnlyList<int> Groups, int Size, int MinKeep)
{
    /// <summary>The distinct kept counts this dimension can take.</summary>
    public int Levels(int roundTo) => roundTo <= 1 ? Size - MinKeep + 1 : (Size - MinKeep) / roundTo + 1 + ((Size - MinKeep) % roundTo == 0 ? 0 : 1);
}

/// <summary>
/// The search space of a model: one kept-channel count per dimension (a prunable group, or several tied ones).
/// Samplers work in the unit cube, where 1 keeps everything and 0 keeps the minimum; <see cref="Decode"/> snaps a point to
/// counts. MACs and parameters of any configuration are predicted exactly, in microseconds, by <see cref="Costs"/>.
/// </summary>
public sealed class SearchSpace
{
    readonly ChannelSelection selection;
    readonly SearchSpaceOptions options;
    readonly SearchDimension[] dimensions;
    readonly CostPolynomial costs;
    readonly long baseStatistics;

    public SearchSpace(ChannelGroups groups, IImportance importance, SearchSpaceOptions? options = null)
    {
        this.options = options ?? new SearchSpaceOptions();
        this.options.Validate();
        Groups = groups;
        selection = new ChannelSelection(groups, importance);
        var prunable = groups.Prunable.Where(g => g.Size > 1).ToList();
        if (prunable.Count == 0) throw new ArgumentException("the model has no prunable channel group with more than one channel: there is nothing to search");
        dimensions = (this.options.TieEqualSizedGroups
                ? prunable.GroupBy(g => (g.Size, Stream: this.options.TieStreamsApart && g.Producers.Count > 1)).Select(s => s.ToList())
                : prunable.Select(g => new List<ChannelGroup> { g }))
            .Select(members =>
            {
                var first = members[0];
                int min = Math.Clamp(first.RoundKeep(first.Size * this.options.MinKeepFraction, this.options.RoundTo), first.MinKeep(this.options.RoundTo), first.Size);
                string name = members.Count == 1 ? first.Name : $"{first.Size} channels ({members.Count} groups)";
                return new SearchDimension(name, members.Select(g => g.Index).ToArray(), first.Size, min);
            })
            .ToArray();
        var model = groups.Model;
        var cost = ModelCost.Analyze(model);
        BaseMacs = cost.Macs;
        BaseParams = cost.Params;
        BaseBytes = cost.SerializedBytes;
        costs = CostPolynomial.Fit(this);
        baseStatistics = costs.Evaluate(Full).Statistics;
    }

    public ChannelGroups Groups { get; }
    public IReadOnlyList<SearchDimension> Dimensions => dimensions;
    public int Count => dimensions.Length;
    public SearchSpaceOptions Options => options;
    public long BaseMacs { get; }
    public long BaseParams { get; }
    public long BaseBytes { get; }

    /// <summary>The unpruned configuration: every dimension at its full size.</summary>
    public int[] Full => dimensions.Select(d => d.Size).ToArray();

    /// <summary>Kept counts for a point of the unit cube (coordinates clamped to [0, 1]).</summary>
    public int[] Decode(ReadOnlySpan<double> unit)
    {
        if (unit.Length != dimensions.Length) throw new ArgumentException($"a point of this space has {dimensions.Length} coordinates, not {unit.Length}");
        var kept = new int[dimensions.Length];
        for (int i = 0; i < kept.Length; i++)
        {
            var d = dimensions[i];
            double count = d.MinKeep + Math.Clamp(unit[i], 0, 1) * (d.Size - d.MinKeep);
            kept[i] = Snap(d, count);
        }
        return kept;
    }

    /// <summary>The unit-cube point of a configuration (the inverse of <see cref="Decode"/> on snapped points).</summary>
    public double[] Encode(IReadOnlyList<int> kept)
    {
        Check(kept);
        return dimensions.Select((d, i) => d.Size == d.MinKeep ? 1.0 : (kept[i] - d.MinKeep) / (double)(d.Size - d.MinKeep)).ToArray();
    }

    /// <summary>The same kept fraction in every dimension (the uniform-pruning baseline).</summary>
    public int[] Uniform(double keptFraction) => dimensions.Select(d => Snap(d, d.Size * keptFraction)).ToArray();

    int Snap(SearchDimension d, double count)
    {
        int snapped = options.RoundTo <= 1 ? (int)Math.Round(count, MidpointRounding.AwayFromZero)
            : (int)Math.Round(count / options.RoundTo, MidpointRounding.AwayFromZero) * options.RoundTo;
        return Math.Clamp(snapped, d.MinKeep, d.Size);
    }

    /// <summary>Checks that counts belong to this space.</summary>
    public void Check(IReadOnlyList<int> kept)
    {
        if (kept.Count != dimensions.Length) throw new ArgumentException($"a configuration of this space has {dimensions.Length} counts, not {kept.Count}");
        for (int i = 0; i < kept.Count; i++)
            if (kept[i] < dimensions[i].MinKeep || kept[i] > dimensions[i].Size)
                throw new ArgumentException($"dimension {dimensions[i].Name} keeps between {dimensions[i].MinKeep} and {dimensions[i].Size} channels, not {kept[i]}");
    }

    /// <summary>Kept count per channel group (by group index), for <see cref="ChannelSelection.KeepCounts"/>.</summary>
    public IReadOnlyDictionary<int, int> GroupCounts(IReadOnlyList<int> kept)
    {
        Check(kept);
        var counts = new Dictionary<int, int>();
        for (int i = 0; i < dimensions.Length; i++)
            foreach (int g in dimensions[i].Groups) counts[g] = kept[i];
        return counts;
    }

    /// <summary>Which channels survive: the most important ones of each group, by the space's criterion.</summary>
    public PruningSelection Select(IReadOnlyList<int> kept) => selection.KeepCounts(GroupCounts(kept));

    /// <summary>The pruned model of a configuration.</summary>
    public ModelProto Prune(IReadOnlyList<int> kept) => StructuredPruner.Prune(Select(kept));

    /// <summary>Exact MACs and parameters of a configuration, without building it.</summary>
    public (long Macs, long Params) Costs(IReadOnlyList<int> kept)
    {
        Check(kept);
        var (macs, parameters, _) = costs.Evaluate(kept);
        return (macs, parameters);
    }

    /// <summary>Size of the pruned model's file (before BN folding): the unpruned size less four bytes per removed float
    /// (parameters and BN statistics). Length prefixes of the tensors shrink by a byte or so too, which this ignores.</summary>
    public long PredictBytes(IReadOnlyList<int> kept)
    {
        Check(kept);
        var (_, parameters, statistics) = costs.Evaluate(kept);
        return BaseBytes - 4 * (BaseParams + baseStatistics - parameters - statistics);
    }

    internal (long Macs, long Params, long Statistics) CostsByPruning(IReadOnlyList<int> kept) => PrunedCost.PredictWithStatistics(Select(kept));

    /// <summary>A stable text key of a configuration, for duplicate detection.</summary>
    public static string Key(IReadOnlyList<int> kept) => string.Join(",", kept);
}

/// <summary>
/// MACs and parameters are quadratic in the kept counts (every term is output channels × input channels × a constant,
/// or linear), so a polynomial fitted on a few probes of <see cref="PrunedCost"/> predicts them exactly. It is checked on
/// random configurations; where a graph breaks the assumption it falls back to <see cref="PrunedCost"/> (0.1–1 ms each).
/// </summary>
sealed class CostPolynomial
{
    readonly SearchSpace? fallback;
    const int Quantities = 3; // MACs, parameters, BN statistics
    readonly double[] constant = new double[Quantities];
    readonly double[][] linear, square;
    readonly double[][,] cross;

    CostPolynomial(int n, SearchSpace? fallback)
    {
        this.fallback = fallback;
        linear = [new double[n], new double[n], new double[n]];
        square = [new double[n], new double[n], new double[n]];
        cross = [new double[n, n], new double[n, n], new double[n, n]];
    }

    public static CostPolynomial Fit(SearchSpace space)
    {
        int n = space.Count;
        var p = new CostPolynomial(n, null);
        var full = space.Full;
        double[] Probe(params (int Dim, int Delta)[] moves)
        {
            var kept = (int[])full.Clone();
            foreach (var (dim, delta) in moves) kept[dim] += delta;
            var (macs, parameters, statistics) = space.CostsByPruning(kept);
            return [macs, parameters, statistics];
        }
        // Around the full model with δ = kept − size: f = c + Σ gᵢδᵢ + Σ hᵢᵢδᵢ² + Σ hᵢⱼδᵢδⱼ.
        var f0 = Probe();
        bool CanStep(int dim, int steps) => full[dim] - steps >= space.Dimensions[dim].MinKeep;
        var f1 = new double[n][];
        for (int i = 0; i < n; i++)
        {
            if (!CanStep(i, 1)) continue;
            f1[i] = Probe((i, -1));
            double[]? f2 = CanStep(i, 2) ? Probe((i, -2)) : null;
            for (int k = 0; k < Quantities; k++)
            {
                double h = f2 is null ? 0 : (f2[k] - 2 * f1[i][k] + f0[k]) / 2;
                p.square[k][i] = h;
                p.linear[k][i] = h - (f1[i][k] - f0[k]);
            }
        }
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                if (f1[i] is null || f1[j] is null) continue;
                var fij = Probe((i, -1), (j, -1));
                for (int k = 0; k < Quantities; k++)
                    p.cross[k][i, j] = fij[k] - f0[k] + p.linear[k][i] + p.linear[k][j] - p.square[k][i] - p.square[k][j];
            }
        Array.Copy(f0, p.constant, Quantities);
        p.full = full;

        // Verify on random configurations; any mismatch means the graph has a cost term we did not model.
        var random = new Random(17);
        for (int trial = 0; trial < 8; trial++)
        {
            var point = Enumerable.Range(0, n).Select(_ => random.NextDouble()).ToArray();
            var kept = space.Decode(point);
            var exact = space.CostsByPruning(kept);
            if (p.Evaluate(kept) != exact) return new CostPolynomial(n, space);
        }
        return p;
    }

    int[] full = [];

    public (long Macs, long Params, long Statistics) Evaluate(IReadOnlyList<int> kept)
    {
        if (fallback is not null) return fallback.CostsByPruning(kept);
        var result = new double[Quantities];
        int n = full.Length;
        Span<double> delta = stackalloc double[n];
        for (int i = 0; i < n; i++) delta[i] = kept[i] - full[i];
        for (int k = 0; k < Quantities; k++)
        {
            double f = constant[k];
            var c = cross[k];
            for (int i = 0; i < n; i++)
            {
                if (delta[i] == 0) continue;
                f += linear[k][i] * delta[i] + square[k][i] * delta[i] * delta[i];
                for (int j = i + 1; j < n; j++) f += c[i, j] * delta[i] * delta[j];
            }
            result[k] = f;
        }
        return ((long)Math.Round(result[0]), (long)Math.Round(result[1]), (long)Math.Round(result[2]));
    }

    public bool IsExactPolynomial => fallback is null;
}
