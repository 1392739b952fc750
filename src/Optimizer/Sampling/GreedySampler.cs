using ParetoPrune.Objectives;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// NetAdapt-style greedy allocation (Yang et al. 2018), the published automatic baseline the search is measured against:
/// starting from the full model, each iteration proposes one candidate per dimension, the incumbent with only that
/// dimension shrunk just enough to bring the bounded cost down to the iteration's target (or, when no dimension can reach
/// it alone, cut to its minimum with the rest of the cut spread over the others); every candidate is pruned and
/// briefly fine-tuned (the screening stage), and the most accurate becomes the incumbent. The targets fall geometrically
/// from the full model's cost to the bound over <see cref="Iterations"/> iterations, so the last iteration's candidates all
/// meet it, and the study's promotion and final stages then fine-tune the best of them like any other sampler's.
/// </summary>
/// <remarks>
/// Unlike NetAdapt, each candidate is pruned from the base model, not from the incumbent's fine-tuned weights: the search
/// pipeline re-prunes every configuration from the base, and a per-iteration fine-tuned chain would give this baseline
/// more training than its screening budget says. The sampler is stateless like the others: the incumbent chain is replayed
/// from the history, whose trials it proposed in order (it needs <c>--parallel 1</c>, so the history is complete).
/// The "resource" is <see cref="SearchProblem.BoundedResource"/> (1 = on the bound).
/// </remarks>
public sealed class GreedySampler : ISampler
{
    public string Name => "greedy";

    /// <summary>Iterations a study of <paramref name="budget"/> trials over <paramref name="dimensions"/> dimensions gets: as
    /// many as the budget pays for (one candidate per dimension each), at least one.</summary>
    public static int Iterations(int budget, int dimensions) => Math.Max(1, budget / Math.Max(1, dimensions));

    public IReadOnlyList<int[]> Propose(SamplerContext context, int count)
    {
        var problem = context.Problem;
        Check(problem);
        int iterations = Iterations(context.Budget, problem.Space.Count);
        double start = problem.BoundedResource(problem.Space.Full);
        var incumbent = problem.Space.Full;
        var seen = new HashSet<string> { SearchSpace.Key(incumbent) };
        int position = 0;
        for (int iteration = 0; iteration < iterations; iteration++)
        {
            if (problem.BoundedResource(incumbent) <= 1) return []; // on the bound: done
            // Geometric targets, the last one the bound itself.
            double target = iteration == iterations - 1 ? 1 : Math.Pow(start, 1 - (iteration + 1) / (double)iterations);
            var candidates = Shrunk(problem, incumbent, target).Where(k => seen.Add(SearchSpace.Key(k))).ToList();
            if (candidates.Count == 0) return [];
            if (position + candidates.Count > context.History.Count)
                return candidates.Skip(context.History.Count - position).Take(count).ToList();
            var outcomes = context.History.Skip(position).Take(candidates.Count).ToList();
            position += candidates.Count;
            var best = outcomes.Where(o => o.Values is not null && o.Values.ContainsKey(ObjectiveKind.Accuracy))
                               .OrderByDescending(o => o.Values![ObjectiveKind.Accuracy]).FirstOrDefault();
            if (best is null) return []; // every candidate of the iteration failed: nothing to continue from
            incumbent = best.Kept;
        }
        return [];
    }

    /// <summary>Refuses a problem the sampler cannot work on (no cost bound it can compute before training), with the reason.</summary>
    public static void Check(SearchProblem problem)
    {
        if (problem.CostBounds.Count == 0)
            throw new ArgumentException("the greedy sampler shrinks the model to a cost bound: give one it can compute before training, " +
                                        "e.g. --constraint \"params <= 0.25*baseline\" (macs, params, bytes, or energy or latency from a profile)");
    }

    /// <summary>
    /// For each dimension, the incumbent with that dimension at the largest count that brings the resource to the target;
    /// dimensions that cannot reach it alone propose nothing. When none can (a step larger than any one layer's share, as
    /// under an energy bound whose fixed cost per inference no layer carries), each dimension is cut to its minimum and the
    /// rest of the shortfall is spread over the others alike (<see cref="CutThenSpread"/>), so the walk still reaches the bound.
    /// </summary>
    static IEnumerable<int[]> Shrunk(SearchProblem problem, int[] incumbent, double target)
    {
        var alone = ShrunkAlone(problem, incumbent, target).ToList();
        if (alone.Count > 0) return alone;
        return Enumerable.Range(0, incumbent.Length).Select(d => CutThenSpread(problem, incumbent, d, target)).OfType<int[]>();
    }

    /// <summary>The incumbent with dimension <paramref name="d"/> at its minimum and every other dimension cut alike, as
    /// little as brings the resource to the target; null if even all the others at their minimum do not.</summary>
    static int[]? CutThenSpread(SearchProblem problem, int[] incumbent, int d, double target)
    {
        var dimensions = problem.Space.Dimensions;
        int roundTo = problem.Space.Options.RoundTo;
        if (incumbent[d] <= dimensions[d].MinKeep) return null;
        int[] Scaled(double factor) => incumbent.Select((k, i) => i == d ? dimensions[i].MinKeep
                                                                  : Math.Clamp(Snap((int)Math.Floor(k * factor), dimensions[i].MinKeep, roundTo), dimensions[i].MinKeep, k)).ToArray();
        if (problem.BoundedResource(Scaled(0)) > target) return null;
        double lo = 0, hi = 1;
        for (int i = 0; i < 40; i++)
        {
            double mid = (lo + hi) / 2;
            if (problem.BoundedResource(Scaled(mid)) <= target) lo = mid; else hi = mid;
        }
        // One factor moves every group at once, and a step of the narrow groups can jump far past the target: give
        // channels back one group and one step at a time, round robin, while the target holds.
        var kept = Scaled(lo);
        int step = Math.Max(1, roundTo);
        for (bool grew = true; grew;)
        {
            grew = false;
            for (int i = 0; i < kept.Length; i++)
            {
                if (i == d || kept[i] + step > incumbent[i]) continue;
                kept[i] += step;
                if (problem.BoundedResource(kept) <= target) grew = true; else kept[i] -= step;
            }
        }
        return kept;
    }

    static IEnumerable<int[]> ShrunkAlone(SearchProblem problem, int[] incumbent, double target)
    {
        var dimensions = problem.Space.Dimensions;
        int roundTo = problem.Space.Options.RoundTo;
        for (int d = 0; d < dimensions.Count; d++)
        {
            int min = dimensions[d].MinKeep, current = incumbent[d];
            var candidate = (int[])incumbent.Clone();
            candidate[d] = min;
            if (current <= min || problem.BoundedResource(candidate) > target) continue;
            // Costs grow with the count: the largest count at or under the target, below the current one.
            int lo = min, hi = current - 1;
            while (lo < hi)
            {
                int mid = (lo + hi + 1) / 2;
                candidate[d] = mid;
                if (problem.BoundedResource(candidate) <= target) lo = mid; else hi = mid - 1;
            }
            candidate[d] = Snap(lo, min, roundTo);
            yield return candidate;
        }
    }

    /// <summary>Down to a multiple of the space's rounding step (as <see cref="SearchSpace.Decode"/> snaps), at least the minimum.</summary>
    static int Snap(int count, int min, int roundTo) => roundTo <= 1 ? count : Math.Max(min, count / roundTo * roundTo);
}
