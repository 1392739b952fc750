using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Objectives.Tests.Data;

/// <summary>Validation keeps to images the model did not train on, as far as its recorded trainings tell.</summary>
public sealed class ValidationImagesTests
{
    /// <summary>Images that are all different (the first pixel is the image's identity), labels cycling through 4 classes.</summary>
    static Dataset Unique(int count, int offset, string source)
    {
        var pixels = new float[count * 6];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < 6; j++)
                pixels[i * 6 + j] = j == 0 ? (offset + i) / 100_000f : ((i + j) % 7) / 7f;
        return new Dataset(pixels, Enumerable.Range(0, count).Select(i => i % 4).ToArray(), ["a", "b", "c", "d"], 1, 2, 3, source);
    }

    static readonly TrainTest Full = new(Unique(400, 0, "full train"), Unique(200, 10_000, "full test"), "Full set: 400 / 200", "family-x");

    static HashSet<float> Identities(Dataset set) => Enumerable.Range(0, set.Count).Select(i => set.Image(i)[0]).ToHashSet();

    [Fact]
    public void TheFingerprintNamesTheImagesAndTheirOrder()
    {
        Assert.Equal(Unique(50, 0, "a").Fingerprint, Unique(50, 0, "b").Fingerprint); // the content, not the name
        Assert.NotEqual(Unique(50, 0, "a").Fingerprint, Unique(50, 1, "a").Fingerprint);
        var set = Unique(50, 0, "a");
        Assert.NotEqual(set.Fingerprint, set.Take([.. Enumerable.Range(0, 50).Reverse()]).Fingerprint);
        Assert.NotEqual(set.Fingerprint, set.Take([.. Enumerable.Range(0, 49)]).Fingerprint);
    }

    [Fact]
    public void TheSameTrainingSetIsValidatedOnTheHoldOutOfTheModelsOwnTraining()
    {
        var record = TrainingImages.Of(Full, 0.2, 5);
        var chosen = ValidationImages.Choose([record], Full, 0.1, 0);
        var (train, heldOut) = DatasetSplit.Stratified(Full.Train, 0.2, 5);
        Assert.Equal(Identities(heldOut), Identities(chosen.Validation));
        Assert.Equal(Identities(train), Identities(chosen.Train));
        Assert.Empty(Identities(chosen.Validation).Intersect(Identities(train))); // never an image the model trained on
        Assert.Same(Full.Test, chosen.Test);
        Assert.Null(chosen.Caveat);
        Assert.Contains("not the requested fraction 0.1 and seed 0", chosen.Description);
        Assert.Equal((0.2, 5), (chosen.TrainedOn.HeldOutFraction, chosen.TrainedOn.Seed));
    }

    [Fact]
    public void ASetOfTheSameFamilyIsRankedOnHalfTheTestImagesAndTestedOnTheOtherHalf()
    {
        // A sample drawn from the same published set (the embedded sample against the full Fashion-MNIST).
        var sample = new TrainTest(Full.Train.Take([.. Enumerable.Range(0, 100)]), Full.Test.Take([.. Enumerable.Range(0, 80)]), "Sample: 100 / 80", "family-x");
        var chosen = ValidationImages.Choose([TrainingImages.Of(Full, 0.1, 0)], sample, 0.1, 0);
        Assert.Null(chosen.Caveat);
        Assert.Subset(Identities(sample.Test), Identities(chosen.Validation));
        Assert.Subset(Identities(sample.Test), Identities(chosen.Test));
        Assert.Empty(Identities(chosen.Validation).Intersect(Identities(chosen.Test)));
        Assert.Equal(sample.Test.Count, chosen.Validation.Count + chosen.Test.Count);
        Assert.Equal(sample.Train.Count, chosen.Train.Count); // every training image may be fine-tuned on
        Assert.Contains("ranked on 40 of its test images and tested on the other 40", chosen.Description);
        Assert.Equal(0, chosen.TrainedOn.HeldOutFraction); // what a model fine-tuned here will record: it saw all of them

        // So too a set every image of which the model trained on.
        Assert.Contains("test images", ValidationImages.Choose([TrainingImages.Of(Full, 0, 0)], Full, 0.1, 0).Description);
        // And two trainings of the same set with different hold-outs: their union may cover every image.
        Assert.Contains("test images", ValidationImages.Choose([TrainingImages.Of(Full, 0.1, 0), TrainingImages.Of(Full, 0.1, 1)], Full, 0.1, 0).Description);
    }

    [Fact]
    public void AnotherFamilyIsUnseenWhileAnUnknownOriginOrNoRecordIsSaid()
    {
        var other = new TrainTest(Unique(400, 50_000, "other train"), Unique(100, 60_000, "other test"), "Other: 400 / 100", "family-y");
        var unrelated = ValidationImages.Choose([TrainingImages.Of(Full, 0.1, 0)], other, 0.1, 3);
        Assert.Null(unrelated.Caveat);
        Assert.Equal(Identities(DatasetSplit.Stratified(other.Train, 0.1, 3).Validation), Identities(unrelated.Validation));

        var none = ValidationImages.Choose([], other, 0.1, 3);
        Assert.Contains("records no training images", none.Caveat);
        Assert.Equal(Identities(unrelated.Validation), Identities(none.Validation));

        var folder = new TrainTest(Unique(400, 70_000, "folder"), Unique(100, 80_000, "folder test"), "image folder /data: 400 / 100");
        var unknown = ValidationImages.Choose([TrainingImages.Of(Full, 0.1, 0)], folder, 0.1, 3);
        Assert.Contains("also trained on the 400 training images of Full set", unknown.Caveat);
    }

    [Fact]
    public void TrainingsAccumulateInTheModelAndAnUnreadableRecordIsNeverGuessedAround()
    {
        var model = new ModelProto();
        Assert.Empty(TrainingImages.Read(model));
        var first = TrainingImages.Of(Full, 0.1, 0);
        var second = TrainingImages.Of(new TrainTest(Unique(30, 5, "more"), Unique(10, 6, "t"), "More: 30 / 10"), 0.2, 1);
        TrainingImages.Append(model, first);
        TrainingImages.Append(model, second);
        TrainingImages.Append(model, first); // the same training again adds nothing
        Assert.Equal([first, second], TrainingImages.Read(model));

        OnnxModel.SetMetadata(model, TrainingImages.MetadataKey, "{ not json");
        var error = Assert.Throws<FormatException>(() => TrainingImages.Read(model));
        Assert.Contains(TrainingImages.MetadataKey, error.Message);
    }
}
