namespace ParetoPrune.Optimizer.Pruning;

/// <summary>Turns "how many channels" into "which channels": the highest-scoring ones of each group survive.</summary>
public sealed class ChannelSelection
{
    readonly ChannelGroups groups;
    readonly IImportance importance;
    readonly Dictionary<int, double[]> scores = [];

    public ChannelSelection(ChannelGroups groups, IImportance importance)
    {
        this.groups = groups;
        this.importance = importance;
    }

    /// <summary>Scores of a group's channels, computed once.</summary>
    public double[] Scores(ChannelGroup group)
    {
        if (!scores.TryGetValue(group.Index, out var s)) scores[group.Index] = s = importance.Score(groups, group);
        return s;
    }

    /// <summary>Keeps the given number of channels in each listed group (by index); other groups keep all.</summary>
    public PruningSelection KeepCounts(IReadOnlyDictionary<int, int> counts)
    {
        var selection = new PruningSelection(groups);
        foreach (var (index, count) in counts)
        {
            var group = groups.Groups[index];
            if (!group.Prunable && count != group.Size) throw new ArgumentException($"group {group.Name} is not prunable: {group.Reason}");
            if (count < group.MinKeep() || count > group.Size)
                throw new ArgumentException($"group {group.Name} has {group.Size} channels; keeping {count} is outside [{group.MinKeep()}, {group.Size}]");
            if (count == group.Size) continue;
            selection.Keep(group, TopChannels(group, count));
        }
        return selection;
    }

    /// <summary>The same fraction removed from every prunable group (the classic uniform baseline).</summary>
    public PruningSelection Uniform(double amount, int roundTo = 1)
    {
        CheckAmount(amount);
        return KeepCounts(groups.Prunable.ToDictionary(g => g.Index, g => g.RoundKeep(g.Size * (1 - amount), roundTo)));
    }

    /// <summary>Kept fractions per group (by index), rounded to the multiple.</summary>
    public PruningSelection KeepFractions(IReadOnlyDictionary<int, double> fractions, int roundTo = 1) =>
        KeepCounts(fractions.ToDictionary(f => f.Key, f =>
        {
            if (f.Value is <= 0 or > 1) throw new ArgumentException($"a kept fraction must be in (0, 1], got {f.Value}");
            return groups.Groups[f.Key].RoundKeep(groups.Groups[f.Key].Size * f.Value, roundTo);
        }));

    /// <summary>
    /// Removes the given fraction of all prunable channels, least important first across groups. Scores are divided by
    /// their group's mean so layers of different scale compete fairly; every group keeps at least its minimum.
    /// </summary>
    public PruningSelection Global(double amount, int roundTo = 1)
    {
        CheckAmount(amount);
        var prunable = groups.Prunable.ToList();
        var remaining = prunable.ToDictionary(g => g.Index, g => g.Size);
        var ranked = new List<(int Group, double Score)>();
        foreach (var group in prunable)
        {
            var s = Scores(group);
            double mean = s.Average();
            ranked.AddRange(s.Select(v => (group.Index, mean > 0 ? v / mean : v)));
        }
        int toRemove = (int)Math.Round(amount * ranked.Count, MidpointRounding.AwayFromZero);
        foreach (var (group, _) in ranked.OrderBy(r => r.Score))
        {
            if (toRemove == 0) break;
            if (remaining[group] <= groups.Groups[group].MinKeep(roundTo)) continue;
            remaining[group]--;
            toRemove--;
        }
        return KeepCounts(remaining.ToDictionary(r => r.Key, r => groups.Groups[r.Key].RoundKeep(r.Value, roundTo)));
    }

    IEnumerable<int> TopChannels(ChannelGroup group, int count)
    {
        var s = Scores(group);
        var kept = Enumerable.Range(0, group.Size).OrderByDescending(c => s[c]).ThenBy(c => c).Take(count).ToList();
        KeepPaddedInputs(group, kept, s);
        return kept;
    }

    /// <summary>
    /// A channel-padding Pad (ResNet's option-A shortcut) whose output keeps only padded channels would be left with an
    /// empty input, which no runtime accepts: the input's best channel then takes the place of the weakest kept one.
    /// </summary>
    void KeepPaddedInputs(ChannelGroup group, List<int> kept, double[] scores)
    {
        foreach (var node in groups.Graph.Nodes.Where(n => n.OpType == "Pad"))
        {
            if (!groups.TryGetSpace(node.Input[0], out var input) || input.Ids.Length == 0) continue;
            var channels = input.Ids.Select(groups.Locate).Where(l => l.Group == group.Index).Select(l => l.Channel).Distinct().ToList();
            if (channels.Count == 0 || channels.Any(kept.Contains)) continue;
            int weakest = kept.MinBy(c => scores[c]);
            kept[kept.IndexOf(weakest)] = channels.MaxBy(c => scores[c]);
        }
    }

    static void CheckAmount(double amount)
    {
        if (amount is < 0 or >= 1 || double.IsNaN(amount))
            throw new ArgumentException($"the pruning amount is the fraction of channels removed and must be in [0, 1), got {amount}");
    }
}
