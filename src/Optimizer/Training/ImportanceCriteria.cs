using ParetoPrune.Objectives.Data;
using ParetoPrune.Optimizer.Pruning;

namespace ParetoPrune.Optimizer.Training;

/// <summary>Channel-importance criteria by name, weight-based and data-driven: the one place names become criteria.</summary>
public static class ImportanceCriteria
{
    /// <summary>Every criterion name: the weight-based ones, then the data-driven ones.</summary>
    public static IReadOnlyList<string> Names { get; } = ["l1", "l2", "fpgm", "bn", "random", .. ActivationImportance.Names];

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
