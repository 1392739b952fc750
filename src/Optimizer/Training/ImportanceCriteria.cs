using ParetoPrune.Objectives.Data;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// A channel-importance criterion (l1, l2, fpgm, bn, random, taylor, apoz, mean-act, lrp, lrp-zplus): what the search
/// ranks channels by, what a structured method of <c>compare</c> is, and what <c>prune</c> uses. Made only from a known
/// name (<see cref="Parse"/>), so holding one means it exists.
/// </summary>
public sealed record ChannelCriterion
{
    ChannelCriterion(string name) => Name = name;

    /// <summary>The name stored with a study and a comparison, and given on the command line.</summary>
    public string Name { get; }

    /// <summary>Filter L1 norm, the default.</summary>
    public static ChannelCriterion L1 { get; } = new("l1");

    /// <summary>Whether ranking channels runs the model on training data (Taylor, APoZ, LRP…).</summary>
    public bool NeedsData => ActivationImportance.IsDataDriven(Name);

    /// <summary>A criterion by name or alias (bn-gamma, mean-activation, lrp-epsilon), kept as given, lower-cased: a study
    /// stores it so, and a resumed one compares it so.</summary>
    /// <exception cref="ArgumentException">Not a criterion; the message lists the known ones.</exception>
    public static ChannelCriterion Parse(string name)
    {
        string key = name.Trim().ToLowerInvariant();
        return !ImportanceCriteria.IsKnown(key) ? throw new ArgumentException($"unknown criterion '{name}'; criteria are {string.Join(", ", ImportanceCriteria.Names)}")
            : key == L1.Name ? L1 : new(key);
    }

    /// <summary>The importance measure. Data-driven criteria measure <paramref name="batches"/> batches of
    /// <paramref name="data"/> (the training images) and need it; <paramref name="seed"/> drives sampling and "random".</summary>
    /// <exception cref="ArgumentException">A data-driven criterion without data.</exception>
    public IImportance Create(Dataset? data, int batches = 8, int seed = 0) => ImportanceCriteria.Create(Name, data, batches, seed);

    public override string ToString() => Name;
}

/// <summary>Channel-importance criteria by name, weight-based and data-driven: the one place names become criteria.</summary>
public static class ImportanceCriteria
{
    /// <summary>Every criterion name: the weight-based ones, then the data-driven ones.</summary>
    public static IReadOnlyList<string> Names { get; } = ["l1", "l2", "fpgm", "bn", "random", .. ActivationImportance.Names];

    /// <summary>Whether <paramref name="name"/> is a criterion's name or one of its aliases.</summary>
    internal static bool IsKnown(string name)
    {
        if (Names.Contains(name) || ActivationImportance.IsDataDriven(name)) return true;
        try
        {
            WeightImportance.Parse(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// The criterion called <paramref name="name"/>. Data-driven ones measure <paramref name="batches"/> batches of
    /// <paramref name="data"/> (the training images) and need it; <paramref name="seed"/> drives sampling and "random".
    /// </summary>
    /// <exception cref="ArgumentException">Unknown name, or a data-driven criterion without data; the message says which.</exception>
    public static IImportance Create(string name, Dataset? data, int batches = 8, int seed = 0)
    {
        if (ActivationImportance.IsDataDriven(name))
            return ActivationImportance.Parse(name, data ?? throw new ArgumentException($"criterion {name} measures activations and needs data"), batches, seed)!;
        try
        {
            return WeightImportance.Parse(name, seed);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"unknown criterion '{name}'; criteria are {string.Join(", ", Names)}");
        }
    }
}
