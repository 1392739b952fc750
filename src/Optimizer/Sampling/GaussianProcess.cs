using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using MathNet.Numerics.Optimization;
using LaVector = MathNet.Numerics.LinearAlgebra.Vector<double>;
using SimdVector = System.Numerics.Vector<double>;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// Hyperparameters of a <see cref="GaussianProcess"/>: one Matérn 5/2 length scale per input dimension (in unit-cube
/// units), and the signal and noise variances in <em>standardised</em> output units (targets minus their mean, divided
/// by their standard deviation), so a set fitted on n points is a sensible warm start for n + 1.
/// </summary>
public sealed record GaussianProcessHyperparameters(double[] LengthScales, double SignalVariance, double NoiseVariance);

/// <summary>
/// A log-normal prior on every length scale, making the fit a MAP estimate: with a handful of points in many dimensions,
/// maximum likelihood readily gives some coordinates short length scales that the data do not support, and the model
/// then reverts to its mean (with a large variance) a short step from every observation, which sends an acquisition
/// exploring where nothing is to be found.
/// </summary>
public sealed record LengthScalePrior(double LogMedian, double LogDeviation)
{
    /// <summary>Hvarfner, Hellsten and Nardi (ICML 2024): LogNormal(√2 + ½ ln d, √3) for inputs in the unit cube, i.e. a
    /// median length scale that grows like √d (about 14 for d = 12), so a coordinate matters only where the data say so.</summary>
    public static LengthScalePrior DimensionScaled(int dimensions) => new(Math.Sqrt(2) + 0.5 * Math.Log(dimensions), Math.Sqrt(3));

    /// <summary>Log density over the log length scales (the first <paramref name="d"/> log parameters), up to a constant;
    /// adds its gradient into <paramref name="gradient"/>.</summary>
    internal double AddTo(ReadOnlySpan<double> logParams, int d, Span<double> gradient)
    {
        double total = 0, variance = LogDeviation * LogDeviation;
        for (int j = 0; j < d; j++)
        {
            double z = logParams[j] - LogMedian;
            total -= 0.5 * z * z / variance;
            if (!gradient.IsEmpty) gradient[j] -= z / variance;
        }
        return total;
    }
}

/// <summary>
/// Gaussian-process regression for the Bayesian-optimisation sampler: a Matérn 5/2 kernel with one length scale per
/// dimension (ARD), k(x, x′) = s² (1 + √5 r + 5r²/3) e^(−√5 r), r² = Σⱼ (xⱼ − x′ⱼ)² / ℓⱼ², plus Gaussian noise σ² on
/// the diagonal. Inputs are used as given (the caller passes unit-cube coordinates); targets are standardised inside.
/// </summary>
/// <remarks>
/// Hyperparameters maximise the log marginal likelihood (plus a <see cref="LengthScalePrior"/>'s log density, if given:
/// the search passes one) by analytic gradient and MathNet BFGS in log space. Each log
/// parameter is kept inside a box by a smooth map, log θ = c + h·tanh((u − c)/h) with c, h the box's centre and
/// half-width, and BFGS runs on the unconstrained u: the box cannot be left, the map has slope 1 at the centre, and,
/// unlike MathNet's BfgsBMinimizer (which can stall on a bound, mathnet-numerics#658), nothing breaks when the optimum
/// sits on a bound, as the noise does for noiseless data. The boxes are ℓ ∈ [0.01, 20] (below 0.01 of the cube the
/// model only memorises; above 20 a dimension is effectively ignored), s² ∈ [0.05, 20] and σ² ∈ [1e-6, 1] of the
/// standardised variance (the floor keeps K well conditioned; 1 means "all noise").
/// <para>The likelihood loop uses hand-written, vectorised Cholesky and triangular kernels on flat arrays rather than
/// MathNet's managed provider: at n = 200 the latter takes ~12 ms for the factor and K⁻¹, and a fit with restarts makes
/// ~150 evaluations, against a budget of well under a second; here a whole LML + gradient evaluation (n = 200, d = 24)
/// takes ~2 ms. MathNet supplies the optimiser (and the tests' independent reference computations).</para>
/// <para>A fitted GP is immutable; <see cref="Predict(ReadOnlySpan{double})"/> and the batch overload are thread-safe.</para>
/// </remarks>
public sealed class GaussianProcess
{
    internal const double MinLengthScale = 0.01, MaxLengthScale = 20;
    internal const double MinSignalVariance = 0.05, MaxSignalVariance = 20;
    internal const double MinNoiseVariance = 1e-6, MaxNoiseVariance = 1;

    // Iteration and evaluation caps per start: BFGS on ≤ ~30 log parameters converges in tens of iterations; the
    // evaluation cap also bounds MathNet's line search, which may otherwise take up to 1000 steps.
    const int MaxIterations = 60;
    const int MaxEvaluationsPerStart = 100;

    readonly int n, d;
    readonly double[] scaledInputs;     // n × d row-major, xᵢⱼ / ℓⱼ
    readonly double[] inverseLengthScales;
    readonly double[] cholesky;         // n × n row-major, lower triangle of L with L Lᵀ = K + σ² I (+ jitter)
    readonly double[] alpha;            // K⁻¹ y, standardised
    readonly double signalVariance, targetMean, targetScale;

    /// <summary>Number of training points.</summary>
    public int Count => n;

    /// <summary>Input dimension.</summary>
    public int Dimensions => d;

    /// <summary>Fitted (or given) hyperparameters; variances in standardised output units.</summary>
    public GaussianProcessHyperparameters Hyperparameters { get; }

    /// <summary>Log marginal likelihood of the standardised targets under <see cref="Hyperparameters"/>.</summary>
    public double LogMarginalLikelihood { get; }

    GaussianProcess(IReadOnlyList<double[]> inputs, GaussianProcessLikelihood likelihood, double[] logParams, double mean, double scale)
    {
        n = likelihood.N;
        d = likelihood.D;
        targetMean = mean;
        targetScale = scale;
        // exp(log bound) can land an ulp outside the box: clamp so reported values honour it exactly.
        var lengthScales = new double[d];
        inverseLengthScales = new double[d];
        for (int j = 0; j < d; j++)
        {
            lengthScales[j] = Math.Clamp(Math.Exp(logParams[j]), MinLengthScale, MaxLengthScale);
            inverseLengthScales[j] = 1 / lengthScales[j];
        }
        signalVariance = Math.Clamp(Math.Exp(logParams[d]), MinSignalVariance, MaxSignalVariance);
        Hyperparameters = new GaussianProcessHyperparameters(lengthScales, signalVariance,
                                                             Math.Clamp(Math.Exp(logParams[d + 1]), MinNoiseVariance, MaxNoiseVariance));
        LogMarginalLikelihood = likelihood.Evaluate(logParams, []);
        cholesky = likelihood.Factor.ToArray();
        alpha = likelihood.Alpha.ToArray();
        scaledInputs = new double[n * d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++)
                scaledInputs[i * d + j] = inputs[i][j] * inverseLengthScales[j];
    }

    /// <summary>
    /// Fits a GP: hyperparameters maximise the log marginal likelihood from a default start (length scales 0.5, signal
    /// variance 1, noise variance 0.01), or from <paramref name="warmStart"/> if given, plus <paramref name="restarts"/>
    /// random starts drawn from <c>new Random(seed)</c>; the best point any start reached wins. Deterministic for a seed.
    /// With a <paramref name="prior"/>, they maximise the log posterior instead, starting from the prior's median.
    /// </summary>
    public static GaussianProcess Fit(IReadOnlyList<double[]> inputs, IReadOnlyList<double> targets, int seed, int restarts = 2,
                                      GaussianProcessHyperparameters? warmStart = null, LengthScalePrior? prior = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(restarts);
        var (d, standardised, mean, scale) = Prepare(inputs, targets);
        if (warmStart is not null) Validate(warmStart, d);
        var likelihood = new GaussianProcessLikelihood(inputs, standardised);
        var (centre, half) = Box(d);

        var random = new Random(seed);
        var starts = new List<double[]> { warmStart is not null ? ToLog(warmStart) : DefaultStart(d, prior?.LogMedian ?? Math.Log(0.5)) };
        for (int r = 0; r < restarts; r++) starts.Add(RandomStart(random, d));

        double[]? best = null;
        double bestLml = double.NegativeInfinity;
        foreach (var start in starts)
        {
            var (logParams, lml) = Maximise(likelihood, prior, start, centre, half);
            if (logParams is not null && lml > bestLml) (best, bestLml) = (logParams, lml);
        }
        // Every evaluation failed (not expected: jitter makes K factorisable): condition on the first start anyway.
        best ??= Clamp(starts[0], centre, half);
        return new GaussianProcess(inputs, likelihood, best, mean, scale);
    }

    /// <summary>
    /// Conditions a GP on the data with the given hyperparameters (standardised variances, clamped into the fitting
    /// boxes), without optimising them: cheap refits between hyperparameter searches.
    /// </summary>
    public static GaussianProcess Create(IReadOnlyList<double[]> inputs, IReadOnlyList<double> targets, GaussianProcessHyperparameters hyperparameters)
    {
        var (d, standardised, mean, scale) = Prepare(inputs, targets);
        Validate(hyperparameters, d);
        var (centre, half) = Box(d);
        return new GaussianProcess(inputs, new GaussianProcessLikelihood(inputs, standardised), Clamp(ToLog(hyperparameters), centre, half), mean, scale);
    }

    /// <summary>
    /// Posterior of the latent function at <paramref name="x"/>, in the original output units. The variance is that of
    /// the function value (signal uncertainty), without the observation noise: what acquisition functions want.
    /// </summary>
    public (double Mean, double Variance) Predict(ReadOnlySpan<double> x)
    {
        if (x.Length != d) throw new ArgumentException($"point has {x.Length} coordinates, the GP was fitted on {d}", nameof(x));
        Span<double> buffer = 2 * n + d <= 1024 ? stackalloc double[2 * n + d] : new double[2 * n + d];
        return PredictOne(x, buffer[..n], buffer.Slice(n, n), buffer.Slice(2 * n, d));
    }

    /// <summary>Batch <see cref="Predict(ReadOnlySpan{double})"/>: same results, buffers allocated once.</summary>
    public void Predict(IReadOnlyList<double[]> xs, Span<double> means, Span<double> variances)
    {
        if (means.Length < xs.Count || variances.Length < xs.Count)
            throw new ArgumentException($"{xs.Count} points need output spans of at least that length (got {means.Length} and {variances.Length})");
        var buffer = new double[2 * n + d];
        for (int p = 0; p < xs.Count; p++)
        {
            if (xs[p].Length != d) throw new ArgumentException($"point {p} has {xs[p].Length} coordinates, the GP was fitted on {d}", nameof(xs));
            (means[p], variances[p]) = PredictOne(xs[p], buffer.AsSpan(0, n), buffer.AsSpan(n, n), buffer.AsSpan(2 * n, d));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    (double Mean, double Variance) PredictOne(ReadOnlySpan<double> x, Span<double> kstar, Span<double> z, Span<double> scaled)
    {
        for (int j = 0; j < d; j++) scaled[j] = x[j] * inverseLengthScales[j];
        for (int i = 0; i < n; i++) kstar[i] = DenseMath.SquaredDistance(scaled, scaledInputs.AsSpan(i * d, d));
        DenseMath.Matern52(kstar, signalVariance, kstar, []);
        double mean = DenseMath.Dot(kstar, alpha);
        // v = s² − k*ᵀ K⁻¹ k* = s² − |L⁻¹ k*|².
        DenseMath.ForwardSubstitute(cholesky, n, kstar, z);
        double variance = Math.Max(signalVariance - DenseMath.Dot(z, z), 0);
        return (targetMean + targetScale * mean, targetScale * targetScale * variance);
    }

    /// <summary>Matérn 5/2 correlation at scaled distance r: (1 + √5 r + 5r²/3) e^(−√5 r).</summary>
    internal static double Matern52(double r)
    {
        double a = Math.Sqrt(5) * r;
        return (1 + a + a * a / 3) * Math.Exp(-a);
    }

    /// <summary>The kernel k(a, b) (standardised units) under the given hyperparameters.</summary>
    internal static double Kernel(ReadOnlySpan<double> a, ReadOnlySpan<double> b, GaussianProcessHyperparameters h)
    {
        double r2 = 0;
        for (int j = 0; j < a.Length; j++)
        {
            double t = (a[j] - b[j]) / h.LengthScales[j];
            r2 += t * t;
        }
        return h.SignalVariance * Matern52(Math.Sqrt(r2));
    }

    static (int D, double[] Standardised, double Mean, double Scale) Prepare(IReadOnlyList<double[]> inputs, IReadOnlyList<double> targets)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(targets);
        if (inputs.Count == 0) throw new ArgumentException("a Gaussian process needs at least one training point", nameof(inputs));
        if (targets.Count != inputs.Count)
            throw new ArgumentException($"{inputs.Count} inputs but {targets.Count} targets", nameof(targets));
        int d = inputs[0]?.Length ?? 0;
        if (d == 0) throw new ArgumentException("inputs must have at least one dimension", nameof(inputs));
        for (int i = 0; i < inputs.Count; i++)
        {
            var x = inputs[i] ?? throw new ArgumentException($"input {i} is null", nameof(inputs));
            if (x.Length != d) throw new ArgumentException($"input {i} has {x.Length} dimensions, input 0 has {d}", nameof(inputs));
            foreach (double v in x)
                if (!double.IsFinite(v)) throw new ArgumentException($"input {i} has a non-finite coordinate ({v})", nameof(inputs));
            if (!double.IsFinite(targets[i])) throw new ArgumentException($"target {i} is not finite ({targets[i]})", nameof(targets));
        }

        double mean = targets.Average();
        double variance = targets.Sum(t => (t - mean) * (t - mean)) / targets.Count;   // population: matches the likelihood's scale
        double scale = Math.Sqrt(variance);
        // Constant (or numerically constant) targets: divide by 1 rather than by ~0; the GP then predicts the constant.
        if (!(scale > 1e-12 * Math.Max(1, Math.Abs(mean)))) scale = 1;
        var standardised = new double[targets.Count];
        for (int i = 0; i < standardised.Length; i++) standardised[i] = (targets[i] - mean) / scale;
        return (d, standardised, mean, scale);
    }

    static void Validate(GaussianProcessHyperparameters h, int d)
    {
        ArgumentNullException.ThrowIfNull(h);
        if (h.LengthScales is null || h.LengthScales.Length != d)
            throw new ArgumentException($"hyperparameters have {h.LengthScales?.Length ?? 0} length scales, the inputs {d} dimensions");
        if (h.LengthScales.Any(l => !(l > 0) || !double.IsFinite(l)) || !(h.SignalVariance > 0) || !double.IsFinite(h.SignalVariance)
            || !(h.NoiseVariance > 0) || !double.IsFinite(h.NoiseVariance))
            throw new ArgumentException("hyperparameters must be positive and finite");
    }

    /// <summary>Centre and half-width of each log parameter's box: [log ℓ₀ … log ℓ_{d−1}, log s², log σ²].</summary>
    static (double[] Centre, double[] Half) Box(int d)
    {
        var centre = new double[d + 2];
        var half = new double[d + 2];
        void Set(int i, double lo, double hi) => (centre[i], half[i]) = ((Math.Log(lo) + Math.Log(hi)) / 2, (Math.Log(hi) - Math.Log(lo)) / 2);
        for (int j = 0; j < d; j++) Set(j, MinLengthScale, MaxLengthScale);
        Set(d, MinSignalVariance, MaxSignalVariance);
        Set(d + 1, MinNoiseVariance, MaxNoiseVariance);
        return (centre, half);
    }

    static double[] ToLog(GaussianProcessHyperparameters h) =>
        [.. h.LengthScales.Select(l => Math.Log(l)), Math.Log(h.SignalVariance), Math.Log(h.NoiseVariance)];

    static double[] DefaultStart(int d, double logLengthScale) => [.. Enumerable.Repeat(logLengthScale, d), 0, Math.Log(1e-2)];

    /// <summary>
    /// Random start: length scales log-uniform in [0.1, 1]·√d, signal variance in [0.3, 3], noise in [1e-4, 0.1]. Typical
    /// distances in the unit cube grow like √d; short length scales in every dimension of a high-d cube make all points
    /// look independent, a flat "all noise" plateau where BFGS stops at once.
    /// </summary>
    static double[] RandomStart(Random random, int d)
    {
        double LogUniform(double lo, double hi) => Math.Log(lo) + random.NextDouble() * (Math.Log(hi) - Math.Log(lo));
        var start = new double[d + 2];
        for (int j = 0; j < d; j++) start[j] = LogUniform(0.1 * Math.Sqrt(d), Math.Sqrt(d));
        start[d] = LogUniform(0.3, 3);
        start[d + 1] = LogUniform(1e-4, 0.1);
        return start;
    }

    static double[] Clamp(double[] logParams, double[] centre, double[] half) =>
        [.. logParams.Select((v, i) => Math.Clamp(v, centre[i] - half[i], centre[i] + half[i]))];

    /// <summary>
    /// Maximises the log marginal likelihood from <paramref name="start"/> (log parameters). MathNet's BFGS throws when
    /// it hits its iteration cap or a line search fails; the objective remembers the best point it saw, so either way
    /// the result is the best point found. Returns null parameters if no evaluation was finite.
    /// </summary>
    static (double[]? LogParams, double Lml) Maximise(GaussianProcessLikelihood likelihood, LengthScalePrior? prior, double[] start, double[] centre, double[] half)
    {
        int p = start.Length;
        var logParams = new double[p];
        var slope = new double[p];
        var gradient = new double[p];
        double[]? best = null;
        double bestLml = double.NegativeInfinity;
        int evaluations = 0;

        // Minimise −LML / n: per-point scaling keeps the objective and its gradient O(1) whatever n is, which suits
        // MathNet's relative tolerances and its first step (∝ 1/|g|²).
        var objective = ObjectiveFunction.Gradient((double, LaVector) (LaVector u) =>
        {
            if (++evaluations > MaxEvaluationsPerStart) throw new EvaluationBudgetExhausted();
            for (int i = 0; i < p; i++)
            {
                double t = Math.Tanh((u[i] - centre[i]) / half[i]);
                logParams[i] = centre[i] + half[i] * t;
                slope[i] = 1 - t * t;
            }
            double lml = likelihood.Evaluate(logParams, gradient);
            var g = LaVector.Build.Dense(p);
            if (!double.IsFinite(lml)) return (double.PositiveInfinity, g);
            if (prior is not null) lml += prior.AddTo(logParams, p - 2, gradient);
            if (lml > bestLml) (bestLml, best) = (lml, (double[])logParams.Clone());
            for (int i = 0; i < p; i++) g[i] = -gradient[i] * slope[i] / likelihood.N;
            return (-lml / likelihood.N, g);
        });

        var u0 = LaVector.Build.Dense(p);
        for (int i = 0; i < p; i++)
        {
            // A start on (or past) a bound moves just inside, where tanh still has slope 0.02: the parameter can leave
            // the bound if new data want it to (a warm start from a fit that ended on a bound).
            double t = Math.Clamp((start[i] - centre[i]) / half[i], -0.99, 0.99);
            u0[i] = centre[i] + half[i] * Math.Atanh(t);
        }
        try
        {
            new BfgsMinimizer(gradientTolerance: 1e-4, parameterTolerance: 1e-7, functionProgressTolerance: 1e-9, MaxIterations)
                .FindMinimum(objective, u0);
        }
        catch (OptimizationException) { }      // iteration cap, failed line search, non-finite value: keep the best point
        catch (EvaluationBudgetExhausted) { }
        return (best, bestLml);
    }

    sealed class EvaluationBudgetExhausted : Exception;
}

/// <summary>
/// The log marginal likelihood of standardised targets and its gradient with respect to the log hyperparameters
/// [log ℓ₀ … log ℓ_{d−1}, log s², log σ²]. Pairwise squared differences per dimension are computed once, so an
/// evaluation costs O(n²d) for the kernel and gradient plus O(n³) (three n³/6 triangular sweeps) for the factor and K⁻¹.
/// </summary>
internal sealed class GaussianProcessLikelihood
{
    public int N { get; }
    public int D { get; }
    readonly int pairs;
    readonly double[] y;
    // sqDiff[j·P + p] = (x_aj − x_bj)² for pair p = b(b−1)/2 + a, a < b: pairs of row b are contiguous, matching
    // the row-major lower triangle of K.
    readonly double[] sqDiff;
    readonly double[] r2, kf, dkf;      // per pair: r², s²·m(r), s²·(5/3)(1 + √5r)e^(−√5r)
    readonly double[] factor, inverse, alpha, scratch;

    /// <summary>The lower Cholesky factor (row-major, lower triangle valid) of the last evaluation.</summary>
    public ReadOnlySpan<double> Factor => factor;

    /// <summary>K⁻¹ y of the last evaluation.</summary>
    public ReadOnlySpan<double> Alpha => alpha;

    public GaussianProcessLikelihood(IReadOnlyList<double[]> inputs, ReadOnlySpan<double> standardisedTargets)
    {
        N = inputs.Count;
        D = inputs[0].Length;
        pairs = N * (N - 1) / 2;
        y = standardisedTargets.ToArray();
        sqDiff = new double[D * pairs];
        for (int b = 1; b < N; b++)
            for (int a = 0; a < b; a++)
            {
                int p = b * (b - 1) / 2 + a;
                for (int j = 0; j < D; j++)
                {
                    double t = inputs[a][j] - inputs[b][j];
                    sqDiff[j * pairs + p] = t * t;
                }
            }
        r2 = new double[pairs];
        kf = new double[pairs];
        dkf = new double[pairs];
        factor = new double[N * N];
        inverse = new double[N * N];
        alpha = new double[N];
        scratch = new double[N];
    }

    /// <summary>
    /// LML at <paramref name="logParams"/>; writes ∂LML/∂(log parameter) into <paramref name="gradient"/> unless it is
    /// empty (then K⁻¹ is not formed). Returns −∞ if K cannot be factorised even with jitter.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public double Evaluate(ReadOnlySpan<double> logParams, Span<double> gradient)
    {
        int n = N, d = D;
        double s2 = Math.Exp(logParams[d]), noise = Math.Exp(logParams[d + 1]);

        r2.AsSpan().Clear();
        for (int j = 0; j < d; j++)
            DenseMath.Axpy(Math.Exp(-2 * logParams[j]), sqDiff.AsSpan(j * pairs, pairs), r2);
        DenseMath.Matern52(r2, s2, kf, dkf);

        // Factorise K = Kf + σ² I; on failure retry with growing jitter (tiny next to the noise floor of 1e-6 at first).
        double jitter = 0;
        while (!DenseMath.Cholesky(Fill(s2 + noise + jitter), n))
        {
            jitter = jitter == 0 ? 1e-10 * s2 : jitter * 10;
            if (jitter > 1e-3 * s2)
            {
                gradient.Clear();
                return double.NegativeInfinity;
            }
        }

        double logDet = 0;
        for (int i = 0; i < n; i++) logDet += 2 * Math.Log(factor[i * n + i]);
        DenseMath.ForwardSubstitute(factor, n, y, scratch);
        DenseMath.BackSubstitute(factor, n, scratch, alpha);
        double lml = -0.5 * DenseMath.Dot(y, alpha) - 0.5 * logDet - 0.5 * n * Math.Log(2 * Math.PI);
        if (gradient.IsEmpty) return lml;

        // ∂LML/∂θ = ½ tr(W ∂K/∂θ), W = ααᵀ − K⁻¹. K⁻¹ = L⁻ᵀL⁻¹ from X = L⁻ᵀ (upper, row-major): K⁻¹_ab = Σ_{k≥max(a,b)} X_ak X_bk.
        DenseMath.InverseTransposeOfLower(factor, n, inverse);
        double traceW = 0, weightedKf = 0;
        for (int a = 0; a < n; a++)
        {
            var tail = inverse.AsSpan(a * n + a, n - a);
            traceW += alpha[a] * alpha[a] - DenseMath.Dot(tail, tail);
        }
        // Reuse r2 for the per-pair weights W_ab ∂k/∂(log ℓ) / (Δ²/ℓ²).
        for (int b = 1; b < n; b++)
        {
            var rowB = inverse.AsSpan(b * n + b, n - b);
            int offset = b * (b - 1) / 2;
            for (int a = 0; a < b; a++)
            {
                double w = alpha[a] * alpha[b] - DenseMath.Dot(inverse.AsSpan(a * n + b, n - b), rowB);
                weightedKf += w * kf[offset + a];
                r2[offset + a] = w * dkf[offset + a];
            }
        }
        // Off-diagonal pairs appear twice in the trace, cancelling the ½; the diagonal has no length-scale dependence.
        for (int j = 0; j < d; j++)
            gradient[j] = Math.Exp(-2 * logParams[j]) * DenseMath.Dot(r2, sqDiff.AsSpan(j * pairs, pairs));
        gradient[d] = weightedKf + 0.5 * s2 * traceW;
        gradient[d + 1] = 0.5 * noise * traceW;
        return lml;
    }

    double[] Fill(double diagonal)
    {
        int n = N;
        for (int b = 0; b < n; b++)
        {
            kf.AsSpan(b * (b - 1) / 2, b).CopyTo(factor.AsSpan(b * n, b));
            factor[b * n + b] = diagonal;
        }
        return factor;
    }
}

/// <summary>
/// Dense kernels on flat row-major arrays, vectorised over contiguous runs. Hot loops are compiled fully optimised at
/// once (AggressiveOptimization): the first fit and prediction would otherwise run tier-0 code, several times slower.
/// </summary>
internal static class DenseMath
{
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double Dot(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int i = 0;
        double sum = 0;
        if (SimdVector.IsSupported && a.Length >= SimdVector.Count)
        {
            var va = MemoryMarshal.Cast<double, SimdVector>(a);
            var vb = MemoryMarshal.Cast<double, SimdVector>(b[..a.Length]);
            var acc = SimdVector.Zero;
            for (int k = 0; k < va.Length; k++) acc += va[k] * vb[k];
            sum = System.Numerics.Vector.Sum(acc);
            i = va.Length * SimdVector.Count;
        }
        for (; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static double SquaredDistance(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        int i = 0;
        double sum = 0;
        if (SimdVector.IsSupported && a.Length >= SimdVector.Count)
        {
            var va = MemoryMarshal.Cast<double, SimdVector>(a);
            var vb = MemoryMarshal.Cast<double, SimdVector>(b[..a.Length]);
            var acc = SimdVector.Zero;
            for (int k = 0; k < va.Length; k++)
            {
                var t = va[k] - vb[k];
                acc += t * t;
            }
            sum = System.Numerics.Vector.Sum(acc);
            i = va.Length * SimdVector.Count;
        }
        for (; i < a.Length; i++)
        {
            double t = a[i] - b[i];
            sum += t * t;
        }
        return sum;
    }

    /// <summary>
    /// From squared scaled distances r², with a = √5 r: k = s²(1 + a + a²/3)e^(−a), the kernel, and (unless
    /// <paramref name="dk"/> is empty) dk = s²(5/3)(1 + a)e^(−a), its derivative factor (∂k/∂log ℓⱼ = dk · Δⱼ²/ℓⱼ²).
    /// Vectorised exp: as a scalar loop this costs as much as the Cholesky. <paramref name="k"/> may alias r².
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Matern52(ReadOnlySpan<double> r2, double s2, Span<double> k, Span<double> dk)
    {
        bool derivative = !dk.IsEmpty;
        int i = 0;
        if (SimdVector.IsSupported && r2.Length >= SimdVector.Count)
        {
            var vr2 = MemoryMarshal.Cast<double, SimdVector>(r2);
            var vk = MemoryMarshal.Cast<double, SimdVector>(k);
            var vdk = MemoryMarshal.Cast<double, SimdVector>(dk);
            var sqrt5 = new SimdVector(Math.Sqrt(5));
            for (int j = 0; j < vr2.Length; j++)
            {
                var a = sqrt5 * System.Numerics.Vector.SquareRoot(vr2[j]);
                var e = s2 * System.Numerics.Vector.Exp(-a);
                vk[j] = (SimdVector.One + a + a * a / 3) * e;
                if (derivative) vdk[j] = 5.0 / 3 * (SimdVector.One + a) * e;
            }
            i = vr2.Length * SimdVector.Count;
        }
        for (; i < r2.Length; i++)
        {
            double a = Math.Sqrt(5) * Math.Sqrt(r2[i]);
            double e = s2 * Math.Exp(-a);
            k[i] = (1 + a + a * a / 3) * e;
            if (derivative) dk[i] = 5.0 / 3 * (1 + a) * e;
        }
    }

    /// <summary>y += a·x.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Axpy(double a, ReadOnlySpan<double> x, Span<double> y)
    {
        int i = 0;
        if (SimdVector.IsSupported && x.Length >= SimdVector.Count)
        {
            var vx = MemoryMarshal.Cast<double, SimdVector>(x);
            var vy = MemoryMarshal.Cast<double, SimdVector>(y[..x.Length]);
            var va = new SimdVector(a);
            for (int k = 0; k < vx.Length; k++) vy[k] += va * vx[k];
            i = vx.Length * SimdVector.Count;
        }
        for (; i < x.Length; i++) y[i] += a * x[i];
    }

    /// <summary>In-place Cholesky of the lower triangle of a row-major n × n matrix (the upper is not read). False if not positive definite.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static bool Cholesky(double[] m, int n)
    {
        for (int j = 0; j < n; j++)
        {
            var rowJ = m.AsSpan(j * n, j);
            double pivot = m[j * n + j] - Dot(rowJ, rowJ);
            if (!(pivot > 0)) return false;
            double l = Math.Sqrt(pivot);
            m[j * n + j] = l;
            for (int i = j + 1; i < n; i++)
                m[i * n + j] = (m[i * n + j] - Dot(m.AsSpan(i * n, j), rowJ)) / l;
        }
        return true;
    }

    /// <summary>Solves L z = b for lower-triangular L (row-major).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ForwardSubstitute(ReadOnlySpan<double> l, int n, ReadOnlySpan<double> b, Span<double> z)
    {
        for (int i = 0; i < n; i++)
            z[i] = (b[i] - Dot(l.Slice(i * n, i), z[..i])) / l[i * n + i];
    }

    /// <summary>Solves Lᵀ x = z for lower-triangular L (row-major), by columns of Lᵀ (rows of L) so access stays contiguous. Overwrites z.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void BackSubstitute(ReadOnlySpan<double> l, int n, Span<double> z, Span<double> x)
    {
        for (int i = n - 1; i >= 0; i--)
        {
            x[i] = z[i] / l[i * n + i];
            Axpy(-x[i], l.Slice(i * n, i), z[..i]);
        }
    }

    /// <summary>X = L⁻ᵀ (upper triangle, row-major; the lower is not written): row j of X is column j of L⁻¹, so every dot product is contiguous.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void InverseTransposeOfLower(ReadOnlySpan<double> l, int n, Span<double> x)
    {
        for (int j = 0; j < n; j++)
        {
            var row = x.Slice(j * n, n);
            row[j] = 1 / l[j * n + j];
            for (int i = j + 1; i < n; i++)
                row[i] = -Dot(l.Slice(i * n + j, i - j), row[j..i]) / l[i * n + i];
        }
    }
}
