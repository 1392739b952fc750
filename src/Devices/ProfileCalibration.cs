namespace ParetoPrune.Devices;

/// <summary>A profile fitted to measurements, and how well it fits them.</summary>
/// <param name="LatencyRmseMs">Root-mean-square error of the fitted latency over the measurements.</param>
/// <param name="LatencyMaxRelativeError">Largest |predicted − measured| / measured latency.</param>
/// <param name="EnergyRmseJoules">Same for energy per inference; null when no energy was given.</param>
public sealed record ProfileFit(
    DeviceProfile Profile, int Samples,
    double LatencyRmseMs, double LatencyMaxRelativeError,
    double? EnergyRmseJoules, double? EnergyMaxRelativeError)
{
    /// <summary>Per measured model, in the order given: the fitted latency, and the latency predicted by a fit to all the
    /// other models (leave-one-out: how far the profile is off for a model it was not fitted to).</summary>
    public IReadOnlyList<(double MeasuredMs, double FittedMs, double LeftOutMs)> PerModel { get; init; } = [];

    /// <summary>The 90 % interval of an estimate as a factor f (the latency lies in [estimate / f, estimate × f]), from the
    /// leave-one-out errors taken as log-normal: f = exp(1.645 × RMS of ln(left-out / measured)). Null with fewer than 3 models.</summary>
    public double? LatencyErrorFactor { get; init; }
}

/// <summary>
/// Fits a <see cref="DeviceProfile"/> to measurements taken on a board, so that users can make a profile of
/// their own device: measure a handful of models of different sizes with <see cref="HostDevice"/> on the board,
/// count them, and fit.
/// </summary>
public static class ProfileCalibration
{
    const int Unknowns = 4;  // FixedMs, MsPerGmac, MsPerMegabyte, MsPerLayer

    /// <summary>
    /// Latency coefficients by non-negative least squares on relative errors, Σ((predicted − measured)/measured)²,
    /// so that small models weigh as much as large ones; solved exactly by trying every subset of the four
    /// coefficients (16 small normal-equation solves) and keeping the best fit whose coefficients are all ≥ 0.
    /// Active power by least squares of measured joules per inference on latency (J = W·s, through the origin),
    /// from the samples that have joules. Idle power cannot be told from total energy: give the measured one.
    /// </summary>
    /// <param name="samples">Per model: its counts, the measured median latency of one run (ms) and, optionally,
    /// the measured energy per run (J). Batch size 1 makes a run one inference.</param>
    public static ProfileFit Fit(
        IReadOnlyList<(ModelCounts Counts, double MeasuredMs, double? MeasuredJoules)> samples,
        string name, string device, double? idleWatts = null, string source = "measurements by the user")
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count < 2) throw new ArgumentException($"fitting a profile needs at least 2 measured models (got {samples.Count}); 6 or more of different sizes fit well", nameof(samples));
        for (int i = 0; i < samples.Count; i++)
        {
            var (counts, ms, joules) = samples[i];
            if (counts is null || counts.Macs < 0 || counts.WeightBytes < 0 || counts.Layers < 0)
                throw new ArgumentException($"sample {i}: model counts must be given and non-negative", nameof(samples));
            if (!double.IsFinite(ms) || ms <= 0) throw new ArgumentException($"sample {i}: latency must be positive (got {ms} ms)", nameof(samples));
            if (joules is { } j && (!double.IsFinite(j) || j <= 0)) throw new ArgumentException($"sample {i}: energy must be positive (got {j} J)", nameof(samples));
        }

        double[][] features = [.. samples.Select(s => Features(s.Counts))];
        double[] measured = [.. samples.Select(s => s.MeasuredMs)];
        double[] coefficients = NonNegativeLeastSquares(features, measured);
        double Predict(int i) => features[i].Zip(coefficients, (f, c) => f * c).Sum();
        var (latencyRmse, latencyMaxRel) = Errors(Enumerable.Range(0, samples.Count).Select(i => (Predict(i), measured[i])));

        double? activeWatts = null, energyRmse = null, energyMaxRel = null;
        var energy = Enumerable.Range(0, samples.Count).Where(i => samples[i].MeasuredJoules is not null)
            .Select(i => (Seconds: measured[i] / 1000, Joules: samples[i].MeasuredJoules!.Value)).ToArray();
        if (energy.Length > 0)
        {
            activeWatts = energy.Sum(e => e.Seconds * e.Joules) / energy.Sum(e => e.Seconds * e.Seconds);
            (energyRmse, energyMaxRel) = Errors(energy.Select(e => (activeWatts.Value * e.Seconds, e.Joules)));
        }

        string description = $"Fitted by least squares to {samples.Count} models measured on {device}: latency RMSE {latencyRmse:0.###} ms, " +
                             $"largest relative error {latencyMaxRel:P1}" +
                             (activeWatts is null ? "; no energy measured, so no active power" : $"; active power from {energy.Length} energy measurements") +
                             (idleWatts is null ? "; idle power not given" : "; idle power as measured") +
                             ". An estimate for models like those measured, not a measurement.";
        // Leave one out: each model predicted by the fit to the others.
        var leftOut = new double[samples.Count];
        for (int i = 0; i < samples.Count && samples.Count >= 3; i++)
        {
            double[] others = NonNegativeLeastSquares([.. features.Where((_, k) => k != i)], [.. measured.Where((_, k) => k != i)]);
            leftOut[i] = features[i].Zip(others, (f, c) => f * c).Sum();
        }
        double? factor = samples.Count >= 3 && leftOut.All(p => p > 0)
            ? Math.Exp(1.645 * Math.Sqrt(leftOut.Select((p, i) => Math.Pow(Math.Log(p / measured[i]), 2)).Average()))
            : null;
        var profile = new DeviceProfile(name, device, description, source,
            coefficients[0], coefficients[1], coefficients[2], coefficients[3], idleWatts, activeWatts) { LatencyErrorFactor = factor };
        return new ProfileFit(profile.Validated("fitted profile"), samples.Count, latencyRmse, latencyMaxRel, energyRmse, energyMaxRel)
        {
            PerModel = [.. Enumerable.Range(0, samples.Count).Select(i => (measured[i], Predict(i), leftOut[i]))],
            LatencyErrorFactor = factor,
        };
    }

    /// <summary>The regressors of <see cref="DeviceProfile.EstimateLatencyMs"/>, in coefficient order.</summary>
    static double[] Features(ModelCounts c) => [1, c.Macs / 1e9, c.WeightBytes / 1e6, c.Layers];

    static (double Rmse, double MaxRelative) Errors(IEnumerable<(double Predicted, double Measured)> pairs)
    {
        var list = pairs.ToList();
        double rmse = Math.Sqrt(list.Average(p => (p.Predicted - p.Measured) * (p.Predicted - p.Measured)));
        return (rmse, list.Max(p => Math.Abs(p.Predicted - p.Measured) / p.Measured));
    }

    /// <summary>
    /// Minimises Σ((x·a_i − y_i)/y_i)² over x ≥ 0. The optimum is the unconstrained fit on its own support, so the
    /// best non-negative unconstrained fit over all 2⁴ supports is exact; supports whose columns are collinear
    /// (e.g. MACs proportional to weights across the samples) are skipped, a smaller support then wins.
    /// </summary>
    static double[] NonNegativeLeastSquares(double[][] a, double[] y)
    {
        int n = y.Length;
        // Relative errors: divide each row by its target, so the target becomes 1.
        double[][] rows = [.. a.Select((row, i) => row.Select(v => v / y[i]).ToArray())];
        double[] best = new double[Unknowns];
        double bestResidual = n;  // the empty support: every prediction 0, every relative error 1
        for (int mask = 1; mask < 1 << Unknowns; mask++)
        {
            int[] support = [.. Enumerable.Range(0, Unknowns).Where(j => (mask >> j & 1) == 1)];
            if (support.Length > n) continue;
            double[]? x = SolveNormalEquations(rows, support);
            if (x is null || x.Any(v => v < 0)) continue;
            var full = new double[Unknowns];
            for (int k = 0; k < support.Length; k++) full[support[k]] = x[k];
            double residual = rows.Sum(r => { double e = r.Zip(full, (f, c) => f * c).Sum() - 1; return e * e; });
            if (residual < bestResidual - 1e-15 * n)
                (best, bestResidual) = (full, residual);
        }
        return best;
    }

    /// <summary>Least squares of rows·x ≈ 1 on the columns in <paramref name="support"/>; null when they are (nearly) collinear.</summary>
    static double[]? SolveNormalEquations(double[][] rows, int[] support)
    {
        int m = support.Length;
        // Columns scaled to unit norm: MACs in G and layers in units differ by orders of magnitude.
        double[] scale = [.. support.Select(j => Math.Sqrt(rows.Sum(r => r[j] * r[j])))];
        if (scale.Any(s => s == 0)) return null;
        var g = new double[m, m + 1];
        for (int p = 0; p < m; p++)
        {
            for (int q = 0; q < m; q++) g[p, q] = rows.Sum(r => r[support[p]] * r[support[q]]) / (scale[p] * scale[q]);
            g[p, m] = rows.Sum(r => r[support[p]]) / scale[p];
        }
        // Gaussian elimination with partial pivoting; a tiny pivot of the unit-diagonal Gram matrix means collinear columns.
        for (int col = 0; col < m; col++)
        {
            int pivot = Enumerable.Range(col, m - col).MaxBy(r => Math.Abs(g[r, col]));
            if (Math.Abs(g[pivot, col]) < 1e-10) return null;
            for (int c = 0; c <= m; c++) (g[col, c], g[pivot, c]) = (g[pivot, c], g[col, c]);
            for (int r = col + 1; r < m; r++)
            {
                double f = g[r, col] / g[col, col];
                for (int c = col; c <= m; c++) g[r, c] -= f * g[col, c];
            }
        }
        var x = new double[m];
        for (int r = m - 1; r >= 0; r--)
        {
            double s = g[r, m];
            for (int c = r + 1; c < m; c++) s -= g[r, c] * x[c];
            x[r] = s / g[r, r];
        }
        for (int k = 0; k < m; k++) x[k] /= scale[k];
        return x;
    }
}
