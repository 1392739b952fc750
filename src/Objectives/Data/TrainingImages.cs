using System.Text.Json;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Data;

/// <summary>
/// Which images a model was trained on, recorded in its metadata by every training that writes it (train, finetune, a
/// search's exported models), so that validation can later keep to images the model has not seen
/// (<see cref="ValidationImages"/>). A set is named by its <see cref="Dataset.Fingerprint"/>, not its path.
/// </summary>
/// <param name="Fingerprint">The <see cref="Dataset.Fingerprint"/> of the training split before the hold-out.</param>
/// <param name="Family">The published dataset it comes from (<see cref="TrainTest.Family"/>), or null.</param>
/// <param name="Count">Images in that split.</param>
/// <param name="HeldOutFraction">The stratified fraction held out for validation (<see cref="DatasetSplit.Stratified"/>);
/// 0 when every image was trained on.</param>
/// <param name="Seed">The seed of that split.</param>
public sealed record TrainingImages(string Fingerprint, string? Family, int Count, double HeldOutFraction, int Seed, string Description)
{
    public const string MetadataKey = "paretoprune.training_images";

    static readonly JsonSerializerOptions Readable = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The training images of <paramref name="train"/> held out at <paramref name="heldOutFraction"/> with <paramref name="seed"/>.</summary>
    public static TrainingImages Of(TrainTest data, double heldOutFraction, int seed) =>
        new(data.Train.Fingerprint, data.Family, data.Train.Count, heldOutFraction, seed,
            $"the {data.Train.Count:N0} training images of {data.Description.Split(": ")[0]}");

    /// <summary>Every training recorded in <paramref name="model"/>, oldest first; empty when none was (a model trained elsewhere).</summary>
    /// <exception cref="FormatException">The record is there but unreadable: never guessed around.</exception>
    public static IReadOnlyList<TrainingImages> Read(ModelProto model)
    {
        if (OnnxModel.GetMetadata(model, MetadataKey) is not { } json) return [];
        try
        {
            return JsonSerializer.Deserialize<List<TrainingImages>>(json) ?? [];
        }
        catch (JsonException e)
        {
            throw new FormatException($"the model's {MetadataKey} metadata cannot be read: {e.Message}", e);
        }
    }

    /// <summary>Adds <paramref name="record"/> to the trainings recorded in <paramref name="model"/> (fine-tuning sees more images).</summary>
    public static void Append(ModelProto model, TrainingImages record)
    {
        var records = Read(model);
        if (records.Contains(record)) return;
        records = [.. records, record];
        OnnxModel.SetMetadata(model, MetadataKey, JsonSerializer.Serialize(records, Readable));
    }
}

/// <summary>
/// The images a model may be validated on without having trained on them, given what it records
/// (<see cref="TrainingImages"/>) and the data at hand:
/// <list type="bullet">
/// <item>the same training set as a recorded training: that training's hold-out (its fraction and seed);</item>
/// <item>a set of the same family that is not the same (the embedded sample against the full Fashion-MNIST), or one
/// every image of which was trained on: half of the test split, stratified, to rank on, and the other half to test;</item>
/// <item>another family: the usual hold-out of the training set;</item>
/// <item>nothing recorded, or no family to compare: the usual hold-out, with a <see cref="Caveat"/> saying that whether
/// the model saw those images cannot be known.</item>
/// </list>
/// </summary>
/// <param name="Train">What fine-tuning may use.</param>
/// <param name="TrainedOn">What a model fine-tuned on <paramref name="Train"/> should record.</param>
/// <param name="Caveat">Why the validation images may have been seen in training; null when they are known unseen.</param>
public sealed record ValidationImages(Dataset Train, Dataset Validation, Dataset Test, string Description, TrainingImages TrainedOn, string? Caveat)
{
    public static ValidationImages Choose(IReadOnlyList<TrainingImages> records, TrainTest data, double fraction, int seed)
    {
        if (fraction is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "the validation fraction must be in (0, 1)");
        bool Same(TrainingImages r) => r.Fingerprint == data.Train.Fingerprint && r.Count == data.Train.Count;
        var heldOut = records.Where(r => Same(r) && r.HeldOutFraction > 0).Select(r => (r.HeldOutFraction, r.Seed)).Distinct().ToList();
        bool allSeen = records.Any(r => Same(r) ? r.HeldOutFraction == 0 : r.Family is not null && r.Family == data.Family) || heldOut.Count > 1;
        var unknown = records.Where(r => !Same(r) && (r.Family is null || data.Family is null)).ToList();

        if (allSeen)
        {
            // The model may have trained on any of these training images: rank on test images, and test on the others.
            var (half, otherHalf) = DatasetSplit.Stratified(data.Test, 0.5, seed);
            var validation = otherHalf.WithSource($"{data.Test.Source} [half used for ranking, stratified, seed {seed}]");
            var test = half.WithSource($"{data.Test.Source} [half held out for testing, stratified, seed {seed}]");
            return new ValidationImages(data.Train, validation, test,
                $"{data.Description}; ranked on {validation.Count:N0} of its test images and tested on the other {test.Count:N0}, because the model " +
                "trained on images of this training set (validation images must be unseen)", TrainingImages.Of(data, 0, seed), null);
        }
        var (f, s) = heldOut.Count == 1 ? heldOut[0] : (fraction, seed);
        var (train, held) = DatasetSplit.Stratified(data.Train, f, s);
        string description = heldOut.Count == 1
            ? $"{data.Description}; validated on the {held.Count:N0} training images the model's training held out (fraction {f:0.###}, seed {s})" +
              ((f, s) == (fraction, seed) ? "" : $", not the requested fraction {fraction:0.###} and seed {seed}")
            : $"{data.Description}; {held.Count:N0} training images held out for validation (fraction {f:0.###}, seed {s})";
        string? caveat = records.Count == 0
            ? "the model records no training images (it was not trained by paretoprune), so whether it saw the validation images cannot be known: its accuracy there may be inflated"
            : unknown.Count > 0
                ? $"the model also trained on {string.Join(", ", unknown.Select(r => r.Description).Distinct())}, which cannot be told apart from these images: its validation accuracy may be inflated"
                : null;
        return new ValidationImages(train, held, data.Test, description, TrainingImages.Of(data, f, s), caveat);
    }
}
