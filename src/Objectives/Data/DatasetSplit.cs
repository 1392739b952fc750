namespace ParetoPrune.Objectives.Data;

public static class DatasetSplit
{
    /// <summary>
    /// Splits off a validation set: each class gives round(fraction × its count) images (midpoint
    /// away from zero), chosen by a permutation drawn from <paramref name="seed"/>. The two parts
    /// are disjoint, together cover <paramref name="train"/>, and keep its image order.
    /// </summary>
    public static (Dataset Train, Dataset Validation) Stratified(Dataset train, double validationFraction, int seed)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (!(validationFraction > 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction,
                "The validation fraction must lie strictly between 0 and 1.");

        var byClass = new List<int>[train.ClassNames.Count];
        for (int c = 0; c < byClass.Length; c++)
            byClass[c] = [];
        for (int i = 0; i < train.Count; i++)
            byClass[train.Labels[i]].Add(i);

        var random = new Random(seed);
        var isValidation = new bool[train.Count];
        foreach (List<int> members in byClass)
        {
            int[] shuffled = members.ToArray();
            random.Shuffle(shuffled);
            int take = (int)Math.Round(validationFraction * shuffled.Length, MidpointRounding.AwayFromZero);
            for (int k = 0; k < take; k++)
                isValidation[shuffled[k]] = true;
        }

        var trainIndices = new List<int>();
        var validationIndices = new List<int>();
        for (int i = 0; i < train.Count; i++)
            (isValidation[i] ? validationIndices : trainIndices).Add(i);
        if (trainIndices.Count == 0 || validationIndices.Count == 0)
            throw new ArgumentException(
                $"A validation fraction of {validationFraction} of {train.Count} images leaves " +
                $"{trainIndices.Count} for training and {validationIndices.Count} for validation; both must be non-empty.",
                nameof(validationFraction));

        string note = $"stratified split {validationFraction:0.###}, seed {seed}";
        return (train.Take(trainIndices).WithSource($"{train.Source} [train part, {note}]"),
            train.Take(validationIndices).WithSource($"{train.Source} [validation part, {note}]"));
    }
}
