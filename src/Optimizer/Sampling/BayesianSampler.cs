using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// Bayesian optimisation of the kept counts. One Gaussian process (Matérn 5/2, per-dimension length scales) per objective
/// that must be observed (accuracy; latency or energy when measured on a device); objectives known before building a
/// candidate (MACs, parameters, bytes, profile estimates) are computed exactly. The acquisition is the expected
/// hypervolume improvement over the current front (Monte-Carlo over the posterior with stratified normal samples) times
/// the probability of meeting the observed constraints; with a single objective, expected improvement of the penalised
/// objective. Candidates: random feasible configurations plus mutations of the front. Batches for parallel workers are
/// built greedily, each pick added to the front at its posterior mean (the Kriging believer) so picks spread out.
/// </summary>
public sealed class BayesianSampler : ISampler
{
    /// <summary>Random candidates scored per proposal.</summary>
    public int RandomCandidates { get; init; } = 1500;

    /// <summary>Configurations of the uniform-pruning line scored per proposal.</summary>
    public int UniformCandidates { get; init; } = 64;

    /// <summary>Mutations of each front member scored per proposal.</summary>
    public int MutationsPerFrontPoint { get; init; } = 40;

    /// <summary>Candidates that get the full Monte-Carlo acquisition after a cheap screening by their optimistic point.</summary>
    public int MonteCarloCandidates { get; init; } = 96;

    /// <summary>Posterior samples per candidate.</summary>
    public int Samples { get; init; } = 32;

    /// <summary>
    /// Share of the proposals after the initial design whose candidates are all moved onto the budget surface
    /// (<see cref="Samplers.OnBound"/>): those proposals spend their trial at the bound, where the answer a user deploys
    /// lies, rather than on the cheaper part of the front; the others spread along the whole front. 0 without a cost bound.
    /// </summary>
    public double BoundFocus { get; init; }

    /// <summary>
    /// Ablation lever of the allocation benchmark (bench/RESULTS.md), not persisted with a study: the focused proposals
    /// choose among moves around the incumbent on the bound (the most accurate screened configuration on the budget
    /// surface), within a radius of the unit cube that halves after every three proposals that did not improve on it
    /// (a trust region, as in TuRBO, Eriksson et al. 2019), instead of among candidates drawn anywhere and moved onto the
    /// bound. The greedy baseline's strength is such local refinement of a good allocation.
    /// </summary>
    internal bool TrustRegion { get; init; }

    /// <summary>
    /// Ablation lever of the allocation benchmark, not persisted with a study: per dimension, the validation accuracy lost
    /// when that group alone is cut to its count under uniform pruning at the bound (the search probes them
    /// once, without training). With <see cref="BoundFocus"/>, the second design point is the allocation they shape on the
    /// bound (<see cref="Samplers.SensitivityShaped"/>): the greedy baseline's strength, measuring each layer's
    /// sensitivity, for the price of one forward pass per group instead of a screened trial per group.
    /// </summary>
    internal IReadOnlyList<double>? Sensitivity { get; init; }

    /// <summary>How far a move may take a coordinate of the unit cube (either way) before any proposal failed to improve on
    /// the incumbent. Every trial after the initial design that does not improve on it counts as a failure, focused or not.</summary>
    internal const double InitialRadius = 0.2;

    public string Name => "bo";

    /// <summary>Whether proposal <paramref name="k"/> after the initial design is one of the <see cref="BoundFocus"/> share
    /// (spread evenly: with ½, every other one).</summary>
    internal bool Focused(int k) => BoundFocus > 0 && Math.Floor((k + 1) * BoundFocus) > Math.Floor(k * BoundFocus);

    /// <summary>Trials before the surrogate takes over: uniform configurations first (the classic baseline's points), then random.</summary>
    internal static int InitialDesign(int budget, int dimensions) => Math.Clamp(budget / 4, 4, Math.Max(4, Math.Min(12, dimensions + 1)));

    public IReadOnlyList<int[]> Propose(SamplerContext context, int count)
    {
        var problem = context.Problem;
        var seen = context.Seen();
        var random = context.NewRandom();
        int started = context.History.Count + context.Pending.Count;
        int initial = InitialDesign(context.Budget, problem.Space.Count);
        var proposals = new List<int[]>();
        if (started < initial && BoundFocus > 0 && started is >= 1 and <= 2)
        {
            // Focused on the bound: the second and third design points are allocations shaped by cost on the budget surface
            // (α = 1, then ½), so the surrogate sees early on what keeping cheap channels gains over uniform pruning. With
            // measured sensitivities, the second is shaped by them and the third by cost alone (α = 1).
            for (int k = started; k <= 2 && proposals.Count < count; k++)
            {
                var shaped = Sensitivity is { } drops
                    ? (k == 1 ? Samplers.SensitivityShaped(problem, drops) : Samplers.CostShaped(problem, 1.0))
                    : Samplers.CostShaped(problem, k == 1 ? 1.0 : 0.5);
                if (shaped is not null && seen.Add(SearchSpace.Key(shaped))) proposals.Add(shaped);
            }
            if (proposals.Count == count) return proposals;
        }
        if (started + proposals.Count < initial)
        {
            // Half the design on the uniform-pruning line (the classic baseline's points: usually good, and they span the
            // cost range), half random configurations around it, so the surrogate sees both the line and departures from it.
            int uniform = Math.Min((initial + 1) / 2 - (started + proposals.Count), count - proposals.Count);
            if (uniform > 0) proposals.AddRange(Samplers.UniformSequence(problem, seen, uniform));
            int rest = Math.Min(count, initial - started) - proposals.Count;
            if (rest > 0) proposals.AddRange(Samplers.RandomFeasible(problem, random, rest, seen, maxSpread: 0.25));
            if (proposals.Count == count) return proposals;
        }
        var evaluated = context.History.Where(h => h.Values is not null).ToList();
        if (evaluated.Count < 2) // nothing to learn from yet (everything failed): keep exploring
        {
            proposals.AddRange(Samplers.RandomFeasible(problem, random, count - proposals.Count, seen));
            return proposals;
        }
        var model = new Surrogate(problem, evaluated, context.Seed);
        var candidates = Candidates(context, model, random, seen);
        List<Candidate>? onBound = null;
        var pending = context.Pending.Concat(proposals).ToList();
        while (proposals.Count < count)
        {
            bool focused = Focused(started + proposals.Count - initial);
            if (focused && TrustRegion && onBound is null)
            {
                var local = Local(context, initial, random, [.. context.Seen(), .. proposals.Select(SearchSpace.Key)]);
                if (local.Count > 0) onBound = local;
            }
            if (focused) onBound ??= OnBound(problem, candidates, [.. context.Seen(), .. proposals.Select(SearchSpace.Key)]);
            var pool = focused && onBound!.Count > 0 ? onBound : candidates;
            if (pool.Count == 0) break;
            int best = model.SelectBest(pool, pending, Samples, MonteCarloCandidates);
            var pick = pool[best].Kept;
            candidates.RemoveAll(c => c.Kept.SequenceEqual(pick));
            onBound?.RemoveAll(c => c.Kept.SequenceEqual(pick));
            proposals.Add(pick);
            pending.Add(pick);
        }
        if (proposals.Count < count) proposals.AddRange(Samplers.RandomFeasible(problem, random, count - proposals.Count, seen));
        return proposals;
    }

    List<Candidate> Candidates(SamplerContext context, Surrogate model, Random random, HashSet<string> seen)
    {
        var problem = context.Problem;
        var space = problem.Space;
        var list = Samplers.RandomFeasible(problem, random, RandomCandidates, seen, maxTries: RandomCandidates * 20);
        // The uniform-pruning line itself: a strong family of its own, which random draws almost never hit exactly.
        list.AddRange(Samplers.UniformSequence(problem, seen, UniformCandidates, index: context.History.Count));
        // Local moves around the front: most gains late in a search are small changes to good configurations.
        foreach (var member in model.FrontConfigurations())
        {
            var x = space.Encode(member);
            int added = 0;
            for (int attempt = 0; attempt < MutationsPerFrontPoint * 5 && added < MutationsPerFrontPoint; attempt++)
            {
                var y = (double[])x.Clone();
                double scale = 0.05 + 0.2 * random.NextDouble();
                double probability = Math.Max(1.0 / y.Length, random.NextDouble() * 0.5);
                for (int i = 0; i < y.Length; i++)
                    if (random.NextDouble() < probability) y[i] = Math.Clamp(y[i] + scale * random.NextGaussian(), 0, 1);
                var kept = space.Decode(y);
                if (problem.PredictedViolation(kept) > 0 || !seen.Add(SearchSpace.Key(kept))) continue;
                list.Add(kept);
                added++;
            }
        }
        return list.Select(k => new Candidate(k, Surrogate.Features(problem, k), problem.Normalised.ToPoint(WithPlaceholders(problem, k)))).ToList();
    }

    /// <summary>
    /// The incumbent on the bound and the trust region's radius, replayed from the history in order: the incumbent is the
    /// most accurate screened configuration within 10 % of the budget surface; the radius halves (down to 1/8 of the
    /// initial one) after every three proposals past the initial design that did not beat it. Null incumbent before any.
    /// </summary>
    internal static (int[]? Incumbent, double Radius) TrustRegionState(SearchProblem problem, IReadOnlyList<Observation> history, int initial)
    {
        int[]? incumbent = null;
        double best = double.NegativeInfinity, radius = InitialRadius;
        int failures = 0;
        for (int i = 0; i < history.Count; i++)
        {
            var h = history[i];
            bool improved = h.Values is { } values && values.TryGetValue(ObjectiveKind.Accuracy, out double accuracy) && accuracy > best
                            && problem.PredictedViolation(h.Kept) == 0 && problem.BoundedResource(h.Kept) >= 0.9;
            if (improved)
            {
                best = h.Values![ObjectiveKind.Accuracy];
                incumbent = h.Kept;
            }
            if (i < initial) continue;
            if (improved) failures = 0;
            else if (++failures == 3)
            {
                radius = Math.Max(InitialRadius / 8, radius / 2);
                failures = 0;
            }
        }
        return (incumbent, radius);
    }

    /// <summary>Moves of the incumbent on the bound within the trust region, each moved back onto the budget surface.</summary>
    static List<Candidate> Local(SamplerContext context, int initial, Random random, HashSet<string> seen)
    {
        var problem = context.Problem;
        var (incumbent, radius) = TrustRegionState(problem, context.History, initial);
        if (incumbent is null) return [];
        var x = problem.Space.Encode(incumbent);
        // A share of the coordinates per move, as TuRBO perturbs min(1, 20/d) of them: a few at a time in these 3–30
        // dimension spaces, so a move tells the surrogate about a few groups at once.
        double share = Math.Max(1.0 / x.Length, 0.3);
        var moved = new List<Candidate>();
        for (int attempt = 0; attempt < 3000 && moved.Count < 300; attempt++)
        {
            var y = (double[])x.Clone();
            bool changed = false;
            for (int i = 0; i < y.Length; i++)
            {
                if (random.NextDouble() >= share) continue;
                y[i] = Math.Clamp(y[i] + radius * (2 * random.NextDouble() - 1), 0, 1);
                changed = true;
            }
            if (!changed) continue;
            if (Samplers.OnBound(problem, problem.Space.Decode(y)) is not { } kept) return [];
            if (!seen.Add(SearchSpace.Key(kept))) continue;
            moved.Add(new Candidate(kept, Surrogate.Features(problem, kept), problem.Normalised.ToPoint(WithPlaceholders(problem, kept))));
        }
        return moved;
    }

    /// <summary>The candidates moved onto the budget surface, without repeats or configurations seen before.</summary>
    static List<Candidate> OnBound(SearchProblem problem, List<Candidate> candidates, HashSet<string> seen)
    {
        var moved = new List<Candidate>();
        foreach (var c in candidates)
        {
            if (Samplers.OnBound(problem, c.Kept) is not { } kept) return [];
            if (!seen.Add(SearchSpace.Key(kept))) continue; // tried, pending, or another candidate's image
            moved.Add(new Candidate(kept, Surrogate.Features(problem, kept), problem.Normalised.ToPoint(WithPlaceholders(problem, kept))));
        }
        return moved;
    }

    /// <summary>The exact coordinates of a candidate; observed objectives get 0 until the surrogate fills them.</summary>
    static IReadOnlyDictionary<ObjectiveKind, double> WithPlaceholders(SearchProblem problem, int[] kept)
    {
        var values = new Dictionary<ObjectiveKind, double>(problem.Predict(kept));
        foreach (var o in problem.Observed) values[o] = problem.Baseline[o];
        return values;
    }

    internal sealed record Candidate(int[] Kept, double[] Features, double[] Point);

    /// <summary>The fitted surrogates and the current front, and the acquisition on top of them.</summary>
    internal sealed class Surrogate
    {
        readonly SearchProblem problem;
        readonly int[] observedIndex;                  // coordinate of each observed objective in the canonical point
        readonly GaussianProcess[] processes;
        readonly List<(int[] Kept, double[] Point)> front = [];
        readonly List<Constraint> observedConstraints;
        readonly double bestPenalised = double.NegativeInfinity;
        readonly PenalisedObjective? penalised;

        public Surrogate(SearchProblem problem, IReadOnlyList<Observation> evaluated, int seed)
        {
            this.problem = problem;
            var observed = problem.Observed;
            observedIndex = observed.Select(o => IndexOf(problem.Objectives, o)).ToArray();
            var inputs = evaluated.Select(e => Features(problem, e.Kept)).ToList();
            var points = evaluated.Select(e => problem.Normalised.ToPoint(e.Values!)).ToList();
            processes = observedIndex.Select((coordinate, j) =>
                GaussianProcess.Fit(inputs, points.Select(p => p[coordinate]).ToList(), seed + 7919 * j,
                                    prior: LengthScalePrior.DimensionScaled(inputs[0].Length))).ToArray();
            observedConstraints = problem.ObservedConstraints(SearchStage.Screening).Where(c => problem.Objectives.Contains(c.Objective)).ToList();

            var violations = evaluated.Select(e => problem.ScreeningConstraints.TotalViolation(e.Values!, problem.Baseline)).ToList();
            var feasible = Enumerable.Range(0, evaluated.Count).Where(i => violations[i] == 0).ToList();
            foreach (int i in NonDominatedSorting.FirstFront(feasible.Select(i => points[i]).ToList()))
                front.Add((evaluated[feasible[i]].Kept, points[feasible[i]]));

            if (problem.Objectives.Count == 1 && problem.Objectives[0] == ObjectiveKind.Accuracy)
            {
                penalised = PenalisedObjective.FromConstraints(problem.Constraints, problem.Baseline);
                foreach (var e in evaluated) bestPenalised = Math.Max(bestPenalised, penalised.Score(Merge(e.Values!, e.Kept)));
            }
        }

        static int IndexOf(IReadOnlyList<ObjectiveKind> list, ObjectiveKind kind)
        {
            for (int i = 0; i < list.Count; i++) if (list[i] == kind) return i;
            return -1;
        }

        IReadOnlyDictionary<ObjectiveKind, double> Merge(IReadOnlyDictionary<ObjectiveKind, double> observed, int[] kept)
        {
            var values = new Dictionary<ObjectiveKind, double>(problem.Predict(kept));
            foreach (var (k, v) in observed) values[k] = v;
            return values;
        }

        public IEnumerable<int[]> FrontConfigurations() => front.Select(f => f.Kept);

        /// <summary>What the surrogates see of a configuration: its position in the unit cube, plus the fractions of the
        /// MACs and parameters it keeps. How much is pruned explains most of the accuracy lost, and a length scale of its
        /// own lets a handful of trials learn that trend, where ten or thirty per-group coordinates alone cannot; the
        /// per-group coordinates then model which groups matter.</summary>
        public static double[] Features(SearchProblem problem, int[] kept)
        {
            var space = problem.Space;
            var unit = space.Encode(kept);
            var (macs, parameters) = space.Costs(kept);
            var features = new double[unit.Length + 2];
            unit.CopyTo(features, 0);
            features[^2] = space.BaseMacs > 0 ? (double)macs / space.BaseMacs : 0;
            features[^1] = space.BaseParams > 0 ? (double)parameters / space.BaseParams : 0;
            return features;
        }

        /// <summary>The index of the candidate with the highest acquisition, given pending configurations (believed at their mean).</summary>
        public int SelectBest(List<Candidate> candidates, IReadOnlyList<int[]> pending, int samples, int monteCarlo)
        {
            int n = candidates.Count, m = processes.Length;
            var means = new double[m][];
            var deviations = new double[m][];
            var features = candidates.Select(c => c.Features).ToList();
            for (int j = 0; j < m; j++)
            {
                means[j] = new double[n];
                var variances = new double[n];
                processes[j].Predict(features, means[j], variances);
                deviations[j] = variances.Select(v => Math.Sqrt(Math.Max(v, 0))).ToArray();
            }
            var feasibility = new double[n];
            for (int c = 0; c < n; c++) feasibility[c] = ProbabilityOfFeasibility(means, deviations, c);

            if (penalised is not null) return ArgMax(n, c => feasibility[c] * ExpectedImprovementPenalised(candidates[c], means[0][c], deviations[0][c]));

            // The front the candidates compete with: observed points plus pending ones believed at their posterior mean.
            var current = front.Select(f => f.Point).ToList();
            foreach (var p in pending) current.Add(Believed(p));
            var reference = problem.ScreeningReference;

            // Cheap screening: improvement of the optimistic point (one standard deviation better in every observed objective).
            var optimistic = new double[n];
            for (int c = 0; c < n; c++)
            {
                var point = (double[])candidates[c].Point.Clone();
                for (int j = 0; j < m; j++) point[observedIndex[j]] = means[j][c] - deviations[j][c];
                optimistic[c] = feasibility[c] * Hypervolume.Improvement(current, point, reference);
            }
            var shortlist = Enumerable.Range(0, n).OrderByDescending(c => optimistic[c]).Take(monteCarlo).ToList();
            if (optimistic[shortlist[0]] <= 0) // nothing can improve: explore where the surrogate knows least
                return ArgMax(n, c => feasibility[c] * deviations.Sum(d => d[c]));

            var z = Acquisition.StandardNormalSamples(samples);
            double bestValue = double.NegativeInfinity;
            int best = shortlist[0];
            foreach (int c in shortlist)
            {
                double total = 0;
                var point = (double[])candidates[c].Point.Clone();
                for (int s = 0; s < samples; s++)
                {
                    // Objective j uses a different stratum order, so joint samples do not move in lockstep.
                    for (int j = 0; j < m; j++) point[observedIndex[j]] = means[j][c] + deviations[j][c] * z[(s * (2 * j + 1) + j) % samples];
                    total += Hypervolume.Improvement(current, point, reference);
                }
                double value = feasibility[c] * total / samples;
                if (value > bestValue) { bestValue = value; best = c; }
            }
            return best;
        }

        double[] Believed(int[] kept)
        {
            var point = problem.Normalised.ToPoint(WithPlaceholders(problem, kept));
            var features = Features(problem, kept);
            for (int j = 0; j < processes.Length; j++) point[observedIndex[j]] = processes[j].Predict(features).Mean;
            return point;
        }

        double ProbabilityOfFeasibility(double[][] means, double[][] deviations, int c)
        {
            double probability = 1;
            foreach (var constraint in observedConstraints)
            {
                int j = Array.IndexOf(observedIndex, IndexOf(problem.Objectives, constraint.Objective));
                if (j < 0) continue;
                // The surrogate models sign × value / baseline; turn the bound into that scale.
                double bound = constraint.Resolve(problem.Baseline);
                var coordinate = problem.Normalised.ToPoint(new Dictionary<ObjectiveKind, double>(problem.Baseline) { [constraint.Objective] = bound });
                double b = coordinate[observedIndex[j]];
                // Canonical coordinates are minimised, so an upper bound on a cost and a lower bound on accuracy both read "≤ b".
                probability *= Acquisition.ProbabilityOfFeasibility(means[j][c], deviations[j][c], null, b);
            }
            return probability;
        }

        double ExpectedImprovementPenalised(Candidate candidate, double mean, double deviation)
        {
            // Accuracy is the only objective; its coordinate is −accuracy / baseline accuracy.
            double baseline = problem.Baseline[ObjectiveKind.Accuracy];
            var values = Merge(new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = -mean * baseline }, candidate.Kept);
            double score = penalised!.Score(values);
            return Acquisition.ExpectedImprovement(score, deviation * baseline, bestPenalised, maximise: true);
        }

        static int ArgMax(int n, Func<int, double> value)
        {
            int best = 0;
            double bestValue = double.NegativeInfinity;
            for (int i = 0; i < n; i++)
            {
                double v = value(i);
                if (v > bestValue) { bestValue = v; best = i; }
            }
            return best;
        }
    }
}
