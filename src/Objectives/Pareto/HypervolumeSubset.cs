namespace ParetoPrune.Objectives.Pareto;

/// <summary>
/// Chooses k of n points whose set covers the most hypervolume (greedy: each pick adds the largest improvement, which
/// is within 1 − 1/e of the best subset since hypervolume is submodular). Used to choose which candidates earn more
/// fine-tuning: a spread along the whole front, each pick where it adds most, instead of crowding on one end.
/// </summary>
public static class HypervolumeSubset
{
    /// <summary>
    /// Indices of up to <paramref name="count"/> points, in the order picked. Feasible points (violation 0) go first, by
    /// greedy hypervolume improvement over <paramref name="reference"/> (all coordinates minimised); points that add
    /// nothing (dominated, or outside the reference box) follow by <paramref name="tieBreak"/> (lower first), then by
    /// non-dominated rank; infeasible points come last, least violating first.
    /// </summary>
    /// <param name="given">Points already in the set (chosen earlier): picks add to what they cover.</param>
    public static IReadOnlyList<int> Greedy(IReadOnlyList<double[]> points, IReadOnlyList<double> violations, double[] reference, int count,
                                            IReadOnlyList<double>? tieBreak = null, IReadOnlyList<double[]>? given = null)
    {
        if (points.Count != violations.Count) throw new ArgumentException($"{points.Count} points but {violations.Count} violations");
        var chosen = new List<int>();
        var chosenPoints = new List<double[]>(given ?? []);
        var remaining = Enumerable.Range(0, points.Count).Where(i => violations[i] == 0).ToList(); // ascending: ties go to the lower index
        while (chosen.Count < count && remaining.Count > 0)
        {
            int best = -1;
            double bestGain = 0;
            for (int k = 0; k < remaining.Count; k++)
            {
                double gain = Hypervolume.Improvement(chosenPoints, points[remaining[k]], reference);
                if (gain > bestGain) (best, bestGain) = (k, gain);
            }
            if (best < 0) break;
            chosen.Add(remaining[best]);
            chosenPoints.Add(points[remaining[best]]);
            remaining.RemoveAt(best);
        }
        if (chosen.Count < count && remaining.Count > 0)
        {
            var rank = new Dictionary<int, int>();
            var fronts = NonDominatedSorting.Sort(remaining.Select(i => points[i]).ToList());
            for (int f = 0; f < fronts.Count; f++)
                foreach (int k in fronts[f]) rank[remaining[k]] = f;
            chosen.AddRange(remaining.OrderBy(i => tieBreak?[i] ?? 0).ThenBy(i => rank[i]).ThenBy(i => i).Take(count - chosen.Count));
        }
        if (chosen.Count < count)
            chosen.AddRange(Enumerable.Range(0, points.Count).Where(i => violations[i] > 0)
                .OrderBy(i => violations[i]).ThenBy(i => tieBreak?[i] ?? 0).ThenBy(i => i).Take(count - chosen.Count));
        return chosen;
    }
}
