using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>A finished trial as samplers see it: its configuration and, unless it failed, its screening values.</summary>
public sealed record Observation(int[] Kept, IReadOnlyDictionary<ObjectiveKind, double>? Values);

/// <summary>
/// Everything a sampler may use. Samplers keep no state between calls: what they propose is a function of this context
/// and the seed, so a resumed study (whose history comes from the store) proposes exactly what the interrupted one would have.
/// </summary>
/// <param name="Pending">Configurations being evaluated now (parallel workers): never proposed again.</param>
/// <param name="Budget">The study's total number of trials (samplers size their initial design by it).</param>
public sealed record SamplerContext(SearchProblem Problem, IReadOnlyList<Observation> History, IReadOnlyList<int[]> Pending, int Seed, int Budget)
{
    // A fixed mix, not HashCode.Combine: that one is seeded per process, and a resumed study (a new process) must draw
    // the same numbers as the interrupted one.
    internal Random NewRandom(int salt = 0) =>
        new((int)(((uint)Seed * 2654435761u) ^ ((uint)History.Count * 40503u) ^ ((uint)Pending.Count * 92821u) ^ ((uint)salt * 69069u)) & int.MaxValue);

    internal HashSet<string> Seen() => [.. History.Select(h => SearchSpace.Key(h.Kept)), .. Pending.Select(SearchSpace.Key),
                                        SearchSpace.Key(Problem.Space.Full)];

    /// <summary>Feasible (by the screening constraints) successful trials, as normalised canonical points.</summary>
    internal List<(Observation Observation, double[] Point, double Violation)> Evaluated()
    {
        var result = new List<(Observation, double[], double)>();
        foreach (var h in History)
        {
            if (h.Values is null) continue;
            var p = Problem;
            result.Add((h, p.Normalised.ToPoint(h.Values), p.ScreeningConstraints.TotalViolation(h.Values, p.Baseline)));
        }
        return result;
    }
}

/// <summary>Proposes configurations to evaluate (Optuna's ask/tell, with "tell" being the history passed back in).</summary>
public interface ISampler
{
    /// <summary>The name stored with each trial and used on the command line.</summary>
    string Name { get; }

    /// <summary>Up to <paramref name="count"/> new configurations, distinct from each other, from the history and from the pending ones,
    /// each meeting every constraint that can be checked before building it (but for <see cref="GreedySampler"/>, whose walk
    /// reaches the bound only in its last iteration). Fewer when the space is exhausted.</summary>
    IReadOnlyList<int[]> Propose(SamplerContext context, int count);
}

/// <summary>The samplers a search can use; stored with a study and given on the command line by name (<see cref="Samplers.Name"/>).</summary>
public enum SamplerKind
{
    /// <summary>Bayesian optimisation ("bo", <see cref="BayesianSampler"/>), the default.</summary>
    Bayesian,
    /// <summary>Random feasible configurations ("random").</summary>
    Random,
    /// <summary>The same fraction kept in every group, over the feasible range ("uniform").</summary>
    Uniform,
    /// <summary>NSGA-II ("nsga2").</summary>
    Nsga2,
    /// <summary>NetAdapt-style greedy allocation ("greedy", <see cref="GreedySampler"/>).</summary>
    Greedy,
}

/// <summary>The samplers: their names, and one instance per kind.</summary>
public static class Samplers
{
    /// <summary>The names the command line accepts and a study stores, one per <see cref="SamplerKind"/>.</summary>
    public static IReadOnlyList<string> Names { get; } = Enum.GetValues<SamplerKind>().Select(Name).ToArray();

    /// <summary>The name stored with a study and its trials, and given on the command line: "bo".</summary>
    public static string Name(this SamplerKind kind) => kind switch
    {
        SamplerKind.Bayesian => "bo",
        SamplerKind.Random => "random",
        SamplerKind.Uniform => "uniform",
        SamplerKind.Nsga2 => "nsga2",
        SamplerKind.Greedy => "greedy",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>A sampler by name (or a known alias: "bayesian", "nsga-ii", "netadapt").</summary>
    /// <exception cref="ArgumentException">Not a sampler's name; the message lists the known ones.</exception>
    public static SamplerKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "bo" or "bayes" or "bayesian" => SamplerKind.Bayesian,
        "random" => SamplerKind.Random,
        "uniform" => SamplerKind.Uniform,
        "nsga2" or "nsga-ii" => SamplerKind.Nsga2,
        "greedy" or "netadapt" => SamplerKind.Greedy,
        _ => throw new ArgumentException($"unknown sampler '{name}'; known: {string.Join(", ", Names)}"),
    };

    public static ISampler Create(SamplerKind kind) => kind switch
    {
        SamplerKind.Bayesian => new BayesianSampler(),
        SamplerKind.Random => new RandomSampler(),
        SamplerKind.Uniform => new UniformSampler(),
        SamplerKind.Nsga2 => new Nsga2Sampler(),
        SamplerKind.Greedy => new GreedySampler(),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown sampler"),
    };

    /// <summary>Random configurations meeting the predicted constraints, not in <paramref name="seen"/> (which they join).</summary>
    internal static List<int[]> RandomFeasible(SearchProblem problem, Random random, int count, HashSet<string> seen, int maxTries = 0,
                                               double maxSpread = 0.5)
    {
        var space = problem.Space;
        var found = new List<int[]>(count);
        if (maxTries <= 0) maxTries = 200 * count + 200;
        var point = new double[space.Count];
        for (int attempt = 0; attempt < maxTries && found.Count < count; attempt++)
        {
            // A random overall level, then per-dimension jitter around it: plain uniform points all sit near 55 % kept
            // (the mean of many uniform draws), which leaves the heavily and the lightly pruned ends of the front unexplored.
            double level = random.NextDouble();
            double spread = random.NextDouble() * maxSpread;
            for (int i = 0; i < point.Length; i++) point[i] = Math.Clamp(level + (random.NextDouble() * 2 - 1) * spread, 0, 1);
            var kept = space.Decode(point);
            if (problem.PredictedViolation(kept) > 0 || !seen.Add(SearchSpace.Key(kept))) continue;
            found.Add(kept);
        }
        return found;
    }

    /// <summary>Kept fractions in a low-discrepancy order over [lo, hi]: every prefix covers the range evenly (van der Corput, base 2).</summary>
    internal static double VanDerCorput(int index)
    {
        double result = 0, f = 0.5;
        for (int i = index + 1; i > 0; i /= 2, f /= 2) result += f * (i % 2);
        return result;
    }

    /// <summary>The kept-fraction range in which uniform pruning meets the predicted constraints (they are monotone in the fraction).</summary>
    internal static (double Lo, double Hi) FeasibleUniformRange(SearchProblem problem)
    {
        double lo = double.NaN, hi = double.NaN;
        for (int step = 1; step <= 1000; step++)
        {
            double f = step / 1000.0;
            if (problem.PredictedViolation(problem.Space.Uniform(f)) > 0) continue;
            if (double.IsNaN(lo)) lo = f;
            hi = f;
        }
        if (double.IsNaN(lo)) return (1, 1);
        // The top end exactly (costs grow with the fraction): the largest uniform configuration that meets the bounds.
        for (double above = Math.Min(1, hi + 0.001), i = 0; i < 30 && hi < 1; i++)
        {
            double mid = (hi + above) / 2;
            if (problem.PredictedViolation(problem.Space.Uniform(mid)) > 0) above = mid; else hi = mid;
        }
        return (lo, hi);
    }

    /// <summary>Uniform pruning at the bound: the largest kept fraction, the same in every group, whose configuration meets the
    /// predicted constraints; null when no cost bound keeps uniform pruning below the full model.</summary>
    public static int[]? UniformAtBound(SearchProblem problem)
    {
        var (_, hi) = FeasibleUniformRange(problem);
        if (hi >= 1) return null;
        var kept = problem.Space.Uniform(hi);
        return problem.PredictedViolation(kept) > 0 || kept.SequenceEqual(problem.Space.Full) ? null : kept;
    }

    /// <summary>
    /// A configuration moved onto the budget surface: every group's kept fraction scaled by one factor, the largest with
    /// which the configuration still meets the predicted constraints, so the allocation's shape (which groups keep more than
    /// others) is kept and its cost reaches the bound. Groups clamp at their minimum and at full width. Null when the
    /// problem has no cost bound that keeps the full model out.
    /// </summary>
    public static int[]? OnBound(SearchProblem problem, IReadOnlyList<int> kept)
    {
        var space = problem.Space;
        if (problem.PredictedViolation(space.Full) == 0) return null;
        var unit = kept.Select((k, i) => k / (double)space.Dimensions[i].Size).ToArray();
        int[] Scaled(double factor) => space.Dimensions.Select((d, i) => Math.Clamp((int)Math.Floor(d.Size * unit[i] * factor), d.MinKeep, d.Size)).ToArray();
        double lo = 0, hi = 1 / unit.Where(u => u > 0).DefaultIfEmpty(1).Min();
        if (problem.PredictedViolation(Scaled(lo)) > 0) return null;
        for (int i = 0; i < 40; i++)
        {
            double mid = (lo + hi) / 2;
            if (problem.PredictedViolation(Scaled(mid)) > 0) hi = mid; else lo = mid;
        }
        return Scaled(lo);
    }

    /// <summary>
    /// An allocation shaped by cost, on the budget surface: each group keeps a share proportional to (the marginal cost of
    /// one of its channels, relative to the cheapest group's)^−<paramref name="alpha"/>, then every share is scaled by one
    /// factor onto the bound (<see cref="OnBound"/>). α = 0 is uniform pruning; α = 1 keeps the cheap channels (early
    /// convolutions under a parameter bound, whose channels cost few weights) and cuts the expensive ones: a shape random
    /// draws almost never hit. Under a bound that charges every group alike (MACs of a network whose stages cost the same)
    /// it stays close to uniform. Null without a cost bound that keeps the full model out.
    /// </summary>
    public static int[]? CostShaped(SearchProblem problem, double alpha)
    {
        if (problem.CostBounds.Count == 0 || UniformAtBound(problem) is not { } at) return null;
        var marginal = MarginalCosts(problem, at);
        double cheapest = marginal.Where(m => m > 0).DefaultIfEmpty(1).Min();
        var shaped = problem.Space.Dimensions.Select((d, i) =>
            (int)Math.Ceiling(d.Size * Math.Pow(Math.Max(marginal[i] is > 0 ? marginal[i] : cheapest, cheapest) / cheapest, -alpha))).ToArray();
        return OnBound(problem, shaped);
    }

    /// <summary>Marginal costs at <paramref name="at"/>: what one channel fewer in one group at a time saves of the bounded
    /// resource (NaN where the group is at its minimum).</summary>
    static double[] MarginalCosts(SearchProblem problem, int[] at)
    {
        double here = problem.BoundedResource(at);
        return at.Select((k, i) =>
        {
            var fewer = (int[])at.Clone();
            fewer[i] = Math.Max(problem.Space.Dimensions[i].MinKeep, k - 1);
            return fewer[i] == k ? double.NaN : here - problem.BoundedResource(fewer);
        }).ToArray();
    }

    /// <summary>Accuracy lost below which a probe's drop is taken as this much: a 1,000-image validation split resolves
    /// 0.1 points, and a group whose cut costs nothing measurable must not be cut to its minimum on that alone.</summary>
    internal const double SensitivityFloor = 0.002;

    /// <summary>
    /// An allocation shaped by measured sensitivity, on the budget surface. <paramref name="drops"/>[i] is the validation
    /// accuracy lost (a fraction) when group i alone is cut to its count under uniform pruning at the bound
    /// (<see cref="UniformAtBound"/>), the others whole: the sensitivity analysis of Li et al. 2017, one probe per group,
    /// no training. With each group's loss modelled as growing with the square of the channels it loses,
    /// dropᵢ · (xᵢ / rᵢ)² (rᵢ: the channels the probe removed), and its saving as marginal costᵢ · xᵢ, the allocation that
    /// loses least for the saving the bound needs removes xᵢ ∝ costᵢ · rᵢ² / dropᵢ channels: cheap-to-lose, costly groups
    /// give the most. One factor is found by bisection so that the largest such allocation meets every constraint.
    /// Null without a cost bound that keeps the full model out, or when even the smallest such allocation misses it.
    /// </summary>
    public static int[]? SensitivityShaped(SearchProblem problem, IReadOnlyList<double> drops)
    {
        var space = problem.Space;
        if (drops.Count != space.Count) throw new ArgumentException($"{drops.Count} sensitivities for {space.Count} dimensions");
        if (problem.CostBounds.Count == 0 || UniformAtBound(problem) is not { } at) return null;
        var marginal = MarginalCosts(problem, at);
        double cheapest = marginal.Where(m => m > 0).DefaultIfEmpty(1).Min();
        var weight = space.Dimensions.Select((d, i) =>
        {
            double removed = Math.Max(d.Size - at[i], 1); // a group uniform pruning leaves whole was probed at one channel fewer at most
            double cost = marginal[i] is > 0 ? marginal[i] : cheapest;
            return cost * removed * removed / Math.Max(drops[i], SensitivityFloor);
        }).ToArray();
        int[] Allocation(double factor) => space.Dimensions.Select((d, i) =>
            d.Size - (int)Math.Floor(Math.Min(factor * weight[i], d.Size - d.MinKeep))).ToArray();
        double hi = space.Dimensions.Select((d, i) => (d.Size - d.MinKeep) / weight[i]).Where(double.IsFinite).DefaultIfEmpty(0).Max();
        if (problem.PredictedViolation(Allocation(hi)) > 0) return null;
        double lo = 0;
        for (int i = 0; i < 60; i++)
        {
            double mid = (lo + hi) / 2;
            if (problem.PredictedViolation(Allocation(mid)) > 0) lo = mid; else hi = mid;
        }
        return Allocation(hi);
    }

    /// <summary>
    /// Uniform configurations, skipping seen ones, from position <paramref name="index"/> of a fixed order: when a cost bound
    /// keeps uniform pruning below the full model, the largest fraction that meets it comes first (the classic baseline's
    /// answer to "at most B", where a bounded search's best usually lies: a search that starts there never does worse than
    /// it), then fractions spread over the feasible range in low-discrepancy order.
    /// </summary>
    internal static List<int[]> UniformSequence(SearchProblem problem, HashSet<string> seen, int count, int index = 0)
    {
        var (lo, hi) = FeasibleUniformRange(problem);
        bool bounded = hi < 1;
        double Fraction(int i) => bounded ? (i == 0 ? hi : lo + (hi - lo) * VanDerCorput(i - 1)) : lo + (hi - lo) * VanDerCorput(i);
        var found = new List<int[]>();
        for (int i = index; found.Count < count && i < index + 4096; i++)
        {
            var kept = problem.Space.Uniform(Fraction(i));
            if (problem.PredictedViolation(kept) > 0 || !seen.Add(SearchSpace.Key(kept))) continue;
            found.Add(kept);
        }
        return found;
    }
}

/// <summary>Random search: configurations drawn at random (see <see cref="Samplers.RandomFeasible"/>), the baseline every sampler must beat.</summary>
public sealed class RandomSampler : ISampler
{
    public string Name => "random";

    public IReadOnlyList<int[]> Propose(SamplerContext context, int count) =>
        Samplers.RandomFeasible(context.Problem, context.NewRandom(), count, context.Seen());
}

/// <summary>Uniform pruning: the same kept fraction in every dimension, fractions spread evenly over the feasible range.
/// The classic baseline of pruning papers; its first points also open the Bayesian optimiser's design.</summary>
public sealed class UniformSampler : ISampler
{
    internal const string SamplerName = "uniform";

    public string Name => SamplerName;

    public IReadOnlyList<int[]> Propose(SamplerContext context, int count) =>
        Samplers.UniformSequence(context.Problem, context.Seen(), count);
}

/// <summary>
/// NSGA-II (Deb et al. 2002) as a steady-state ask/tell sampler: the first <c>population</c> trials are random; after that
/// each child comes from two binary tournaments (constraint domination rank, then crowding distance) over the best
/// <c>population</c> trials so far, simulated binary crossover and polynomial mutation in the unit cube.
/// </summary>
public sealed class Nsga2Sampler : ISampler
{
    public string Name => "nsga2";

    internal static int PopulationSize(int budget) => Math.Clamp(budget / 4, 6, 24);

    public IReadOnlyList<int[]> Propose(SamplerContext context, int count)
    {
        var problem = context.Problem;
        var random = context.NewRandom();
        var seen = context.Seen();
        int population = PopulationSize(context.Budget);
        var evaluated = context.Evaluated();
        if (evaluated.Count < population) return Samplers.RandomFeasible(problem, random, count, seen);

        // Survivors: the best `population` by (constrained front, crowding distance).
        var points = evaluated.Select(e => e.Point).ToList();
        var fronts = NonDominatedSorting.Sort(points, evaluated.Select(e => e.Violation).ToList());
        var rank = new int[points.Count];
        var crowding = new double[points.Count];
        var survivors = new List<int>();
        for (int f = 0; f < fronts.Count; f++)
        {
            var distances = CrowdingDistance.Compute(fronts[f].Select(i => points[i]).ToList());
            for (int k = 0; k < fronts[f].Length; k++) { rank[fronts[f][k]] = f; crowding[fronts[f][k]] = distances[k]; }
            survivors.AddRange(fronts[f].OrderByDescending(i => crowding[i]));
            if (survivors.Count >= population) break;
        }
        survivors = survivors.Take(population).ToList();

        int Tournament()
        {
            int a = survivors[random.Next(survivors.Count)], b = survivors[random.Next(survivors.Count)];
            if (rank[a] != rank[b]) return rank[a] < rank[b] ? a : b;
            return crowding[a] >= crowding[b] ? a : b;
        }

        var space = problem.Space;
        var children = new List<int[]>();
        for (int attempt = 0; attempt < 100 * count && children.Count < count; attempt++)
        {
            var p1 = space.Encode(evaluated[Tournament()].Observation.Kept);
            var p2 = space.Encode(evaluated[Tournament()].Observation.Kept);
            var child = Crossover(p1, p2, random);
            Mutate(child, random);
            var kept = space.Decode(child);
            if (problem.PredictedViolation(kept) > 0 || !seen.Add(SearchSpace.Key(kept))) continue;
            children.Add(kept);
        }
        if (children.Count < count) children.AddRange(Samplers.RandomFeasible(problem, random, count - children.Count, seen));
        return children;
    }

    /// <summary>Simulated binary crossover (η = 15, probability 0.9, each coordinate swapped with probability 0.5).</summary>
    static double[] Crossover(double[] a, double[] b, Random random, double eta = 15)
    {
        var child = (double[])a.Clone();
        if (random.NextDouble() > 0.9) return child;
        for (int i = 0; i < child.Length; i++)
        {
            if (random.NextDouble() > 0.5 || Math.Abs(a[i] - b[i]) < 1e-12) { if (random.NextDouble() < 0.5) child[i] = b[i]; continue; }
            double u = random.NextDouble();
            double beta = u <= 0.5 ? Math.Pow(2 * u, 1 / (eta + 1)) : Math.Pow(1 / (2 * (1 - u)), 1 / (eta + 1));
            double c1 = 0.5 * ((1 + beta) * a[i] + (1 - beta) * b[i]), c2 = 0.5 * ((1 - beta) * a[i] + (1 + beta) * b[i]);
            child[i] = Math.Clamp(random.NextDouble() < 0.5 ? c1 : c2, 0, 1);
        }
        return child;
    }

    /// <summary>Polynomial mutation (η = 20), each coordinate with probability 1/d.</summary>
    static void Mutate(double[] x, Random random, double eta = 20)
    {
        double probability = 1.0 / x.Length;
        for (int i = 0; i < x.Length; i++)
        {
            if (random.NextDouble() >= probability) continue;
            double u = random.NextDouble();
            double delta = u < 0.5 ? Math.Pow(2 * u, 1 / (eta + 1)) - 1 : 1 - Math.Pow(2 * (1 - u), 1 / (eta + 1));
            x[i] = Math.Clamp(x[i] + delta, 0, 1);
        }
    }
}
