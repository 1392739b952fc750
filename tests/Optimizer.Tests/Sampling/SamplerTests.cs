using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Tests.Sampling;

/// <summary>
/// Samplers on a synthetic problem whose "accuracy" is a known function of the kept fractions (some dimensions matter a
/// lot, others hardly), so that behaviour can be checked without training anything.
/// </summary>
public class SamplerTests
{
    static readonly SearchSpace Space = new(ChannelGroups.Analyze(TestModels.Load("resnet20")), new WeightImportance(WeightImportance.Criterion.L1));

    static SearchProblem Problem(ConstraintSet? constraints = null) => new(
        Space, [ObjectiveKind.Accuracy, ObjectiveKind.Macs], constraints ?? ConstraintSet.Empty,
        new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Macs] = Space.BaseMacs },
        new HashSet<ObjectiveKind> { ObjectiveKind.Macs },
        kept => new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = Space.Costs(kept).Macs }, classes: 10);

    /// <summary>Every third dimension is sensitive (accuracy falls steeply when it is cut), the others barely matter.</summary>
    internal static double SyntheticAccuracy(int[] kept)
    {
        double log = 0;
        for (int i = 0; i < kept.Length; i++)
            log += (i % 3 == 0 ? 0.6 : 0.02) * Math.Log(kept[i] / (double)Space.Dimensions[i].Size);
        return 0.1 + 0.8 * Math.Exp(log);
    }

    static List<Observation> Run(ISampler sampler, SearchProblem problem, int trials, int seed)
    {
        var history = new List<Observation>();
        while (history.Count < trials)
        {
            var proposal = sampler.Propose(new SamplerContext(problem, history, [], seed, trials), 1);
            Assert.Single(proposal);
            var kept = proposal[0];
            var values = new Dictionary<ObjectiveKind, double>(problem.Predict(kept)) { [ObjectiveKind.Accuracy] = SyntheticAccuracy(kept) };
            history.Add(new Observation(kept, values));
        }
        return history;
    }

    static double FinalHypervolume(SearchProblem problem, List<Observation> history) =>
        Hypervolume.Compute(history.Select(h => problem.Normalised.ToPoint(h.Values!)).ToList(), problem.ScreeningReference);

    /// <summary>The samplers that propose only configurations meeting the bounds (the greedy one walks down to them: tested below).</summary>
    public static IEnumerable<object[]> All() => Enum.GetValues<SamplerKind>().Where(k => k != SamplerKind.Greedy).Select(k => new object[] { k });

    [Fact]
    public void GreedyShrinksOneDimensionPerCandidateKeepsTheMostAccurateAndEndsOnTheBound()
    {
        var problem = Problem(ConstraintSet.Parse(["macs <= 0.3*baseline"]));
        var sampler = new GreedySampler();
        // 12 iterations: steps small enough that every group can reach a target alone, as NetAdapt's small resource steps
        // assume (with 4, only the groups that carry most of the MACs can, and the greedy walk must cut those).
        int dimensions = Space.Count, budget = 12 * dimensions;
        Assert.Equal(12, GreedySampler.Iterations(budget, dimensions));
        var history = new List<Observation>();
        var incumbent = Space.Full;
        double previous = Space.BaseMacs;
        for (int iteration = 0; iteration < 12; iteration++)
        {
            // One iteration: candidates that each differ from the incumbent in one dimension, cut to the same target.
            var round = new List<Observation>();
            while (true)
            {
                var proposal = sampler.Propose(new SamplerContext(problem, history, [], 0, budget), 1);
                if (proposal.Count == 0) break;
                var kept = proposal[0];
                var changed = Enumerable.Range(0, dimensions).Where(d => kept[d] != incumbent[d]).ToList();
                // The next iteration began (from the new incumbent): more than one change, or a dimension cut twice.
                if (changed.Count != 1 || round.Any(o => o.Kept[changed[0]] != incumbent[changed[0]])) break;
                Assert.True(kept[changed[0]] < incumbent[changed[0]]);
                var observation = new Observation(kept, new Dictionary<ObjectiveKind, double>(problem.Predict(kept)) { [ObjectiveKind.Accuracy] = SyntheticAccuracy(kept) });
                history.Add(observation);
                round.Add(observation);
            }
            Assert.NotEmpty(round);
            double target = round.Max(o => o.Values![ObjectiveKind.Macs]);
            Assert.True(target < previous, $"iteration {iteration}: MACs {target} did not fall below {previous}");
            previous = target;
            incumbent = round.OrderByDescending(o => o.Values![ObjectiveKind.Accuracy]).First().Kept;
        }
        // The last iteration's candidates meet the bound, and nothing is proposed after it.
        Assert.True(Space.Costs(incumbent).Macs <= 0.3 * Space.BaseMacs);
        Assert.Empty(sampler.Propose(new SamplerContext(problem, history, [], 0, budget), 1));
        // Greedy by accuracy: the sensitive dimensions (every third) keep a larger share than the others.
        double Share(Func<int, bool> which) => Enumerable.Range(0, dimensions).Where(which).Average(d => incumbent[d] / (double)Space.Dimensions[d].Size);
        Assert.True(Share(d => d % 3 == 0) > Share(d => d % 3 != 0) + 0.2, $"sensitive {Share(d => d % 3 == 0):0.00}, others {Share(d => d % 3 != 0):0.00}");
        // Stateless: replayed from the same history, the same proposals.
        var partial = history.Take(dimensions + 3).ToList();
        Assert.Equal(SearchSpace.Key(new GreedySampler().Propose(new SamplerContext(problem, partial, [], 0, budget), 1)[0]),
                     SearchSpace.Key(sampler.Propose(new SamplerContext(problem, partial, [], 0, budget), 1)[0]));
    }

    [Fact]
    public void GreedyReachesABoundThatNoSingleDimensionReachesAlone()
    {
        int dimensions = Space.Count;
        // A bound under what any one group at its minimum reaches, and one iteration, whose target is the bound itself.
        double alone = Enumerable.Range(0, dimensions).Min(d =>
        {
            var kept = Space.Full;
            kept[d] = Space.Dimensions[d].MinKeep;
            return Space.Costs(kept).Macs / (double)Space.BaseMacs;
        });
        double fraction = Math.Round(0.9 * alone, 3);
        var problem = Problem(ConstraintSet.Parse([$"macs <= {fraction.ToString(System.Globalization.CultureInfo.InvariantCulture)}*baseline"]));
        double limit = fraction * Space.BaseMacs;
        var history = new List<Observation>();
        while (sampler() is [var kept])
            history.Add(new Observation(kept, new Dictionary<ObjectiveKind, double>(problem.Predict(kept)) { [ObjectiveKind.Accuracy] = SyntheticAccuracy(kept) }));
        IReadOnlyList<int[]> sampler() => new GreedySampler().Propose(new SamplerContext(problem, history, [], 0, dimensions), 1);

        // One candidate per dimension: that dimension at its minimum, the others cut alike, together just on the bound.
        Assert.Equal(dimensions, history.Count);
        for (int d = 0; d < dimensions; d++)
        {
            var kept = history[d].Kept;
            Assert.Equal(Space.Dimensions[d].MinKeep, kept[d]);
            Assert.True(Space.Costs(kept).Macs <= limit, $"candidate {d}: {Space.Costs(kept).Macs / (double)Space.BaseMacs:P1}");
            Assert.True(Space.Costs(kept).Macs > 0.9 * limit, $"candidate {d}: {Space.Costs(kept).Macs / (double)Space.BaseMacs:P1} of the MACs, far under the bound; kept {string.Join(",", kept)} of {string.Join(",", Space.Full)}, min {string.Join(",", Space.Dimensions.Select(x => x.MinKeep))}");
            var others = Enumerable.Range(0, dimensions).Where(i => i != d && kept[i] > Space.Dimensions[i].MinKeep).Select(i => kept[i] / (double)Space.Dimensions[i].Size).ToList();
            Assert.True(others.Max() - others.Min() < 0.15, $"candidate {d}: the others keep {others.Min():P0} to {others.Max():P0}, not alike");
        }
    }

    static SearchProblem ParamsProblem(double budget) => new(
        Space, [ObjectiveKind.Accuracy, ObjectiveKind.Params], ConstraintSet.Parse([$"params <= {budget}*baseline"]),
        new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Params] = Space.BaseParams },
        new HashSet<ObjectiveKind> { ObjectiveKind.Params },
        kept => new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Params] = Space.Costs(kept).Params }, classes: 10);

    [Fact]
    public void OnTheBoundKeepsTheShapeAndReachesTheBudget()
    {
        var problem = ParamsProblem(0.3);
        var shape = Space.Dimensions.Select((d, i) => i < 4 ? d.Size : d.Size / 2).ToArray(); // the first groups twice the rest's share
        var moved = Samplers.OnBound(problem, shape)!;
        long limit = (long)(0.3 * Space.BaseParams);
        Assert.True(Space.Costs(moved).Params <= limit);
        // On the surface: one more channel in every group that can grow breaks the bound.
        var grown = moved.Select((k, i) => Math.Min(k + 1, Space.Dimensions[i].Size)).ToArray();
        Assert.True(Space.Costs(grown).Params > limit);
        // The shape survives the scaling: the first groups keep a larger share than the others.
        double Share(int i) => moved[i] / (double)Space.Dimensions[i].Size;
        Assert.True(Enumerable.Range(0, 4).Min(Share) > Enumerable.Range(4, Space.Count - 4).Max(Share));
        Assert.Null(Samplers.OnBound(Problem(), shape)); // no bound, no surface
    }

    [Fact]
    public void TheBoundedResourceIsTheBindingBoundsShare()
    {
        var problem = new SearchProblem(
            Space, [ObjectiveKind.Accuracy, ObjectiveKind.Params], ConstraintSet.Parse(["params <= 0.25*baseline", "macs <= 0.5*baseline", "accuracy >= 0.8"]),
            new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Accuracy] = 0.9, [ObjectiveKind.Params] = Space.BaseParams, [ObjectiveKind.Macs] = Space.BaseMacs },
            new HashSet<ObjectiveKind> { ObjectiveKind.Params, ObjectiveKind.Macs },
            kept => new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Params] = Space.Costs(kept).Params, [ObjectiveKind.Macs] = Space.Costs(kept).Macs }, classes: 10);
        // The accuracy bound is not a cost: two bounds, resolved against the baseline.
        Assert.Equal([ObjectiveKind.Params, ObjectiveKind.Macs], problem.CostBounds.Select(b => b.Objective));
        Assert.Equal(0.25 * Space.BaseParams, problem.CostBounds[0].Limit, 6);
        foreach (var kept in new[] { Space.Full, Space.Uniform(0.5), Space.Uniform(0.3) })
        {
            var costs = Space.Costs(kept);
            double expected = Math.Max(costs.Params / (0.25 * Space.BaseParams), costs.Macs / (0.5 * Space.BaseMacs));
            Assert.Equal(expected, problem.BoundedResource(kept), 9);
        }
        Assert.Equal(4, problem.BoundedResource(Space.Full), 6); // the full model spends four times the parameter budget
        Assert.Equal(0, Problem().BoundedResource(Space.Full)); // no bound, nothing spent
    }

    [Fact]
    public void CostShapedAllocationsKeepCheapChannelsUnderAParameterBound()
    {
        var problem = ParamsProblem(0.25);
        var uniform = Samplers.UniformAtBound(problem)!;
        // α = 0 is uniform pruning on the surface.
        var flat = Samplers.CostShaped(problem, 0)!;
        Assert.All(flat.Select((k, i) => Math.Abs(k - uniform[i])), d => Assert.True(d <= 1));
        // α = 1: ResNet-20's first stage (16 channels, few weights each) keeps a larger share than its last (64 channels).
        var shaped = Samplers.CostShaped(problem, 1)!;
        Assert.True(Space.Costs(shaped).Params <= 0.25 * Space.BaseParams);
        double StageShare(int[] kept, int width) => Enumerable.Range(0, Space.Count).Where(i => Space.Dimensions[i].Size == width)
                                                                .Average(i => kept[i] / (double)width);
        Assert.True(StageShare(shaped, 16) > StageShare(shaped, 64) + 0.2, $"stage 1 {StageShare(shaped, 16):0.00}, stage 3 {StageShare(shaped, 64):0.00}");
        Assert.True(StageShare(uniform, 16) < StageShare(uniform, 64) + 0.1);
    }

    [Fact]
    public void SensitivityShapedAllocationsCutLessWhereCuttingCostsMoreAccuracy()
    {
        var problem = ParamsProblem(0.25);
        var alike = Enumerable.Repeat(0.01, Space.Count).ToArray();
        var even = Samplers.SensitivityShaped(problem, alike)!;
        // On the budget surface: within the bound, and one more channel in every group that can take one is over it.
        Assert.True(Space.Costs(even).Params <= 0.25 * Space.BaseParams);
        Assert.True(Space.Costs(even.Select((k, i) => Math.Min(k + 1, Space.Dimensions[i].Size)).ToArray()).Params > 0.25 * Space.BaseParams);
        // A group measured 30 times as sensitive keeps more channels, and every other group pays for them (keeps no more).
        int last = Space.Count - 1;
        var sensitive = (double[])alike.Clone();
        sensitive[last] = 0.3;
        var shaped = Samplers.SensitivityShaped(problem, sensitive)!;
        Assert.True(shaped[last] > even[last], $"the sensitive group keeps {shaped[last]}, {even[last]} when every group is alike");
        Assert.All(Enumerable.Range(0, last), i => Assert.True(shaped[i] <= even[i], $"group {i} keeps {shaped[i]} > {even[i]}"));
        Assert.True(Space.Costs(shaped).Params <= 0.25 * Space.BaseParams);
        // Drops below what validation resolves count as the floor: no group is cut to its minimum on a zero alone.
        var zero = Samplers.SensitivityShaped(problem, new double[Space.Count])!;
        Assert.Equal(Samplers.SensitivityShaped(problem, Enumerable.Repeat(Samplers.SensitivityFloor, Space.Count).ToArray()), zero);
        Assert.Null(Samplers.SensitivityShaped(Problem(), alike)); // no bound, no surface
        Assert.Throws<ArgumentException>(() => Samplers.SensitivityShaped(problem, [0.1]));
    }

    [Fact]
    public void BoundFocusOpensWithCostShapedDesignPointsAndPlacesItsShareOfProposalsOnTheBound()
    {
        var problem = ParamsProblem(0.3);
        var sampler = new BayesianSampler { BoundFocus = 0.5, RandomCandidates = 300, MonteCarloCandidates = 24, Samples = 16 };
        const int budget = 14;
        var history = new List<Observation>();
        while (history.Count < budget)
        {
            var kept = sampler.Propose(new SamplerContext(problem, history, [], 1, budget), 1).Single();
            history.Add(new Observation(kept, new Dictionary<ObjectiveKind, double>(problem.Predict(kept)) { [ObjectiveKind.Accuracy] = SyntheticAccuracy(kept) }));
        }
        // The design: uniform pruning at the bound, then the cost-shaped allocations (α = 1, then ½).
        Assert.Equal(Samplers.UniformAtBound(problem), history[0].Kept);
        Assert.Equal(Samplers.CostShaped(problem, 1), history[1].Kept);
        Assert.Equal(Samplers.CostShaped(problem, 0.5), history[2].Kept);
        // After the design, every other proposal is on the budget surface: no channel can be added to every group.
        bool OnSurface(int[] kept) =>
            Space.Costs(kept.Select((k, i) => Math.Min(k + 1, Space.Dimensions[i].Size)).ToArray()).Params > 0.3 * Space.BaseParams;
        int initial = BayesianSampler.InitialDesign(budget, Space.Count);
        var after = history.Skip(initial).Select((h, k) => (h.Kept, k)).ToList();
        Assert.All(after.Where(a => sampler.Focused(a.k)), a => Assert.True(OnSurface(a.Kept), $"focused proposal {a.k} is below the surface"));
        Assert.Equal((after.Count + 1) / 2, after.Count(a => sampler.Focused(a.k)));
        Assert.All(history, h => Assert.True(Space.Costs(h.Kept).Params <= 0.3 * Space.BaseParams));
        // With measured sensitivities, the second design point is the allocation they shape, the third cost's (α = 1).
        var drops = Enumerable.Range(0, Space.Count).Select(i => 0.01 * (i % 3)).ToArray();
        var informed = new BayesianSampler { BoundFocus = 0.5, Sensitivity = drops };
        var design = new List<Observation>();
        for (int k = 0; k < 3; k++)
        {
            var kept = informed.Propose(new SamplerContext(problem, design, [], 1, budget), 1).Single();
            design.Add(new Observation(kept, new Dictionary<ObjectiveKind, double>(problem.Predict(kept)) { [ObjectiveKind.Accuracy] = SyntheticAccuracy(kept) }));
        }
        Assert.Equal([Samplers.UniformAtBound(problem)!, Samplers.SensitivityShaped(problem, drops)!, Samplers.CostShaped(problem, 1)!], design.Select(h => h.Kept));
        // Without focus the design is the uniform line and random draws, as before.
        var plain = new BayesianSampler().Propose(new SamplerContext(problem, history.Take(1).ToList(), [], 1, budget), 1).Single();
        Assert.NotEqual(Samplers.CostShaped(problem, 1), plain);
    }

    [Fact]
    public void TheTrustRegionRefinesTheIncumbentOnTheBound()
    {
        var problem = ParamsProblem(0.3);
        const int trials = 12;
        int initial = BayesianSampler.InitialDesign(trials, Space.Count);
        // How far each proposal after the initial design lies from the incumbent on the bound it was made from.
        List<double> Distances(BayesianSampler sampler)
        {
            var history = Run(sampler, problem, trials, seed: 4);
            var distances = new List<double>();
            for (int k = initial; k < history.Count; k++)
            {
                Assert.True(problem.BoundedResource(history[k].Kept) >= 0.9, $"proposal {k} keeps {problem.BoundedResource(history[k].Kept):0.000} of the bound ({(sampler.TrustRegion ? "trust region" : "anywhere")})");
                var (incumbent, radius) = BayesianSampler.TrustRegionState(problem, history.Take(k).ToList(), initial);
                Assert.NotNull(incumbent);
                Assert.InRange(radius, BayesianSampler.InitialRadius / 8, BayesianSampler.InitialRadius);
                var (x, y) = (Space.Encode(incumbent), Space.Encode(history[k].Kept));
                distances.Add(Enumerable.Range(0, x.Length).Max(i => Math.Abs(x[i] - y[i])));
            }
            return distances;
        }
        // Fewer candidates than the defaults keep this quick; the comparison needs no more.
        var local = Distances(new BayesianSampler { BoundFocus = 1, TrustRegion = true, RandomCandidates = 300, MonteCarloCandidates = 24, Samples = 16 });
        var anywhere = Distances(new BayesianSampler { BoundFocus = 1, RandomCandidates = 300, MonteCarloCandidates = 24, Samples = 16 });
        Assert.True(local.Average() < anywhere.Average() / 2, $"trust region {local.Average():0.000} vs anywhere {anywhere.Average():0.000}");
        Assert.True(local.Max() < 2 * BayesianSampler.InitialRadius, $"a move of {local.Max():0.000}");
    }

    [Fact]
    public void GreedyNeedsACostBound()
    {
        var e = Assert.Throws<ArgumentException>(() => GreedySampler.Check(Problem()));
        Assert.Contains("cost bound", e.Message);
        Assert.Contains("--constraint", e.Message);
    }

    [Fact]
    public void UniformAtTheBoundIsTheLargestUniformConfigurationThatMeetsIt()
    {
        var problem = Problem(ConstraintSet.Parse(["macs <= 0.4*baseline"]));
        var kept = Samplers.UniformAtBound(problem)!;
        Assert.True(Space.Costs(kept).Macs <= 0.4 * Space.BaseMacs);
        var fractions = kept.Select((k, i) => k / (double)Space.Dimensions[i].Size).ToList();
        Assert.True(fractions.Max() - fractions.Min() < 0.1);
        // One more channel everywhere breaks the bound: it is the largest.
        var bigger = kept.Select((k, i) => Math.Min(k + 1, Space.Dimensions[i].Size)).ToArray();
        Assert.True(Space.Costs(bigger).Macs > 0.4 * Space.BaseMacs);
        // It is the Bayesian optimiser's first design point, and there is none without a cost bound.
        Assert.Equal(kept, new BayesianSampler().Propose(new SamplerContext(problem, [], [], 0, 20), 1)[0]);
        Assert.Null(Samplers.UniformAtBound(Problem()));
    }

    [Theory, MemberData(nameof(All))]
    public void ProposalsAreNewDistinctFeasibleAndDeterministic(SamplerKind name)
    {
        var constraints = ConstraintSet.Parse(["macs <= 0.5*baseline"]);
        var problem = Problem(constraints);
        var sampler = Samplers.Create(name);
        var history = Run(sampler, problem, 14, seed: 3);
        var pending = new List<int[]> { Space.Uniform(0.4) };
        var context = new SamplerContext(problem, history, pending, 3, 20);
        var batch = sampler.Propose(context, 4);
        Assert.Equal(4, batch.Count);
        var keys = history.Select(h => SearchSpace.Key(h.Kept)).Concat(pending.Select(SearchSpace.Key)).ToHashSet();
        foreach (var kept in batch)
        {
            Assert.True(keys.Add(SearchSpace.Key(kept)), $"{name} proposed a configuration twice");
            Assert.True(Space.Costs(kept).Macs <= 0.5 * Space.BaseMacs, $"{name} proposed a configuration over the MAC bound");
        }
        foreach (var h in history) Assert.True(Space.Costs(h.Kept).Macs <= 0.5 * Space.BaseMacs);
        // Stateless: the same context gives the same proposals (what makes a resumed study continue identically).
        Assert.Equal(batch.Select(SearchSpace.Key), Samplers.Create(name).Propose(context, 4).Select(SearchSpace.Key));
    }

    [Fact]
    public void UniformPruningCutsEveryDimensionAlikeAcrossTheFeasibleRange()
    {
        var problem = Problem(ConstraintSet.Parse(["macs <= 0.6*baseline"]));
        var history = Run(new UniformSampler(), problem, 8, seed: 0);
        var fractions = history.Select(h => h.Kept.Select((k, i) => k / (double)Space.Dimensions[i].Size).ToArray()).ToList();
        foreach (var f in fractions) Assert.True(f.Max() - f.Min() < 0.2, $"fractions {string.Join(", ", f)} differ");
        var macs = history.Select(h => Space.Costs(h.Kept).Macs / (double)Space.BaseMacs).ToList();
        Assert.True(macs.Max() <= 0.6);
        Assert.True(macs.Max() - macs.Min() > 0.25, $"uniform pruning should spread over the feasible range: {string.Join(", ", macs.Select(m => m.ToString("F3")))}");

        // Under a cost bound the first point is uniform pruning at the bound: no uniform configuration with more MACs meets it
        // (checked over a fine grid of fractions, independently of the sampler's own search).
        double first = macs[0];
        double bestUniform = Enumerable.Range(1, 2000).Select(i => Space.Costs(Space.Uniform(i / 2000.0)).Macs / (double)Space.BaseMacs).Where(m => m <= 0.6).Max();
        Assert.Equal(bestUniform, first, 6);
        Assert.True(first > 0.55, $"the first uniform point should sit at the 60 % bound, not at {first:F3}");
    }

    [Fact]
    public void BayesianOptimisationBeatsRandomAndUniformOnAStructuredProblem()
    {
        // Same budget, three seeds; the surrogate should learn that two dimensions in three can be cut almost freely.
        var problem = Problem();
        var bo = new BayesianSampler { RandomCandidates = 400, MutationsPerFrontPoint = 20, MonteCarloCandidates = 32, Samples = 16 };
        double Mean(ISampler sampler) => Enumerable.Range(0, 3).Average(seed => FinalHypervolume(problem, Run(sampler, problem, 22, seed)));
        double boHv = Mean(bo), randomHv = Mean(new RandomSampler()), uniformHv = Mean(new UniformSampler());
        Assert.True(boHv > randomHv, $"BO {boHv:F4} should beat random {randomHv:F4}");
        Assert.True(boHv > uniformHv, $"BO {boHv:F4} should beat uniform {uniformHv:F4}");
    }

    [Fact]
    public void TheSurrogateLearnsACostDrivenTrendFromAFewTrials()
    {
        // When accuracy follows the MACs kept (as it mostly does after pruning), the fraction of MACs among the GP's inputs
        // lets 8 trials predict unseen configurations far better than the per-group coordinates alone.
        var problem = Problem();
        var random = new Random(5);
        var configurations = Samplers.RandomFeasible(problem, random, 60, []);
        double Accuracy(int[] kept) => 0.1 + 0.8 * Math.Pow(Space.Costs(kept).Macs / (double)Space.BaseMacs, 0.7);
        double Error(Func<int[], double[]> inputs)
        {
            var train = configurations.Take(8).ToList();
            var gp = GaussianProcess.Fit(train.Select(inputs).ToList(), train.Select(Accuracy).ToList(), seed: 0);
            return Math.Sqrt(configurations.Skip(8).Average(k => Math.Pow(gp.Predict(inputs(k)).Mean - Accuracy(k), 2)));
        }
        double withCosts = Error(k => BayesianSampler.Surrogate.Features(problem, k)), unitOnly = Error(k => Space.Encode(k));
        Assert.Equal(Space.Count + 2, BayesianSampler.Surrogate.Features(problem, Space.Full).Length);
        Assert.Equal([1.0, 1.0], BayesianSampler.Surrogate.Features(problem, Space.Full)[^2..]);
        Assert.True(withCosts < 0.5 * unitOnly, $"RMSE with cost features {withCosts:F4}, unit cube only {unitOnly:F4}");
    }

    [Fact]
    public void FailedTrialsAreNotProposedAgainAndDoNotStopTheSurrogate()
    {
        var problem = Problem();
        var history = Run(new RandomSampler(), problem, 8, seed: 1);
        history[2] = history[2] with { Values = null };
        history[5] = history[5] with { Values = null };
        var proposals = new BayesianSampler { RandomCandidates = 200 }.Propose(new SamplerContext(problem, history, [], 1, 20), 3);
        Assert.Equal(3, proposals.Count);
        Assert.DoesNotContain(proposals, p => p.SequenceEqual(history[2].Kept) || p.SequenceEqual(history[5].Kept));
    }

    [Fact]
    public void AnUnknownSamplerListsTheKnownOnes()
    {
        var error = Assert.Throws<ArgumentException>(() => Samplers.Parse("tpe"));
        Assert.Contains("bo, random, uniform, nsga2, greedy", error.Message);
    }

    [Fact]
    public void EachKindIsStoredUnderItsSamplersName()
    {
        // The name a study and its trials store is the sampler's own: a resumed study finds its sampler again by it.
        foreach (var kind in Enum.GetValues<SamplerKind>())
        {
            Assert.Equal(kind.Name(), Samplers.Create(kind).Name);
            Assert.Equal(kind, Samplers.Parse(kind.Name()));
        }
        Assert.Equal(SamplerKind.Bayesian, Samplers.Parse("Bayesian"));
        Assert.Equal(SamplerKind.Greedy, Samplers.Parse("netadapt"));
    }
}
