using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer.Tests.Search;

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

    public static IEnumerable<object[]> All() => Samplers.Names.Select(n => new object[] { n });

    [Theory, MemberData(nameof(All))]
    public void ProposalsAreNewDistinctFeasibleAndDeterministic(string name)
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
        var error = Assert.Throws<ArgumentException>(() => Samplers.Create("tpe"));
        Assert.Contains("bo, random, uniform, nsga2", error.Message);
    }
}
