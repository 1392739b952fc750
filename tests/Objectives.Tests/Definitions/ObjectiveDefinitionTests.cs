using System.Text.Json;

namespace ParetoPrune.Objectives.Tests.Definitions;

public sealed class ObjectiveCatalogTests
{
    [Fact]
    public void CanonicalNamesDirectionsAndUnits()
    {
        Assert.Equal("accuracy, macs, params, bytes, compressed-bytes, latency, energy, peak-memory", ObjectiveCatalog.KnownNames);
        Assert.Equal(Enum.GetValues<ObjectiveKind>(), ObjectiveCatalog.All.Select(i => i.Kind));
        Assert.True(ObjectiveKind.Accuracy.IsMaximised());
        Assert.All(Enum.GetValues<ObjectiveKind>().Where(k => k != ObjectiveKind.Accuracy), k => Assert.False(k.IsMaximised()));
        Assert.Equal("ms", ObjectiveKind.Latency.Info().Unit);
        Assert.Equal("mJ", ObjectiveKind.Energy.Info().Unit);
        Assert.Equal("fraction", ObjectiveKind.Accuracy.Info().Unit);
        Assert.Equal(Quantity.Bytes, ObjectiveKind.PeakActivationBytes.Info().Quantity);
        foreach (var info in ObjectiveCatalog.All) Assert.Equal(info.Kind, ObjectiveCatalog.Parse(info.Name));
    }

    [Theory]
    [InlineData("flops", ObjectiveKind.Macs)]
    [InlineData("MACs", ObjectiveKind.Macs)]
    [InlineData("size", ObjectiveKind.DenseBytes)]
    [InlineData("DenseBytes", ObjectiveKind.DenseBytes)]
    [InlineData("compressed", ObjectiveKind.CompressedBytes)]
    [InlineData("compressed_bytes", ObjectiveKind.CompressedBytes)]
    [InlineData("Peak Memory", ObjectiveKind.PeakActivationBytes)]
    [InlineData("PeakActivationBytes", ObjectiveKind.PeakActivationBytes)]
    [InlineData("parameters", ObjectiveKind.Params)]
    [InlineData("acc", ObjectiveKind.Accuracy)]
    [InlineData(" latency ", ObjectiveKind.Latency)]
    public void Aliases(string name, ObjectiveKind expected) => Assert.Equal(expected, ObjectiveCatalog.Parse(name));

    [Fact]
    public void UnknownNameListsTheKnownOnes()
    {
        var e = Assert.Throws<FormatException>(() => ObjectiveCatalog.Parse("speed"));
        Assert.Contains("'speed'", e.Message);
        Assert.Contains(ObjectiveCatalog.KnownNames, e.Message);
        Assert.False(ObjectiveCatalog.TryParse("", out _));
    }

    [Fact]
    public void FormatsForPeople()
    {
        Assert.Equal("91.25 %", ObjectiveKind.Accuracy.Format(0.9125));
        Assert.Equal("313.7 M", ObjectiveKind.Macs.Format(313.7e6));
        Assert.Equal("1.5 MiB", ObjectiveKind.DenseBytes.Format(1.5 * 1024 * 1024));
        Assert.Equal("12.5 ms", ObjectiveKind.Latency.Format(12.5));
        Assert.Equal("0.7 mJ", ObjectiveKind.Energy.Format(0.7));
    }

    [Fact]
    public void JsonUsesCanonicalNames()
    {
        Assert.Equal("\"peak-memory\"", JsonSerializer.Serialize(ObjectiveKind.PeakActivationBytes));
        Assert.Equal(ObjectiveKind.Macs, JsonSerializer.Deserialize<ObjectiveKind>("\"flops\""));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ObjectiveKind>("\"speed\""));
        // As dictionary keys too: a baseline written to and read from JSON.
        var baseline = new Dictionary<ObjectiveKind, double> { [ObjectiveKind.Macs] = 3e8, [ObjectiveKind.PeakActivationBytes] = 1024 };
        string json = JsonSerializer.Serialize(baseline);
        Assert.Equal("""{"macs":300000000,"peak-memory":1024}""", json);
        Assert.Equal(baseline, JsonSerializer.Deserialize<Dictionary<ObjectiveKind, double>>(json));
        Assert.Equal(ObjectiveKind.Macs, Assert.Single(JsonSerializer.Deserialize<Dictionary<ObjectiveKind, double>>("""{"flops":1}""")!).Key);
    }
}

public sealed class ProvenanceTests
{
    [Fact]
    public void DescriptionsSayHowTheValueWasObtained()
    {
        Assert.Equal("computed from the ONNX graph", Provenance.Computed.ToString());
        Assert.Equal("measured on Raspberry Pi 4B with INA260, ONNX Runtime 1.31",
            Provenance.Measured("Raspberry Pi 4B", "INA260", "ONNX Runtime 1.31").ToString());
        Assert.Equal("measured on Raspberry Pi 4B", Provenance.Measured("Raspberry Pi 4B", null, null).ToString());
        Assert.Equal("scored on the validation split of Fashion-MNIST sample, 2,000 images",
            Provenance.Scored("Fashion-MNIST sample, 2,000 images", "validation").ToString());
        var estimate = Provenance.Estimated("pi4b-horowitz", "Raspberry Pi 4B");
        Assert.StartsWith("estimated, not measured", estimate.ToString());
        Assert.DoesNotContain("measured on", estimate.ToString());
        Assert.False(estimate.IsMeasurement);
        Assert.True(Provenance.Measured("x", null, null).IsMeasurement);
    }

    [Fact]
    public void RoundTripsThroughJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        foreach (var p in new[]
                 {
                     Provenance.Computed, Provenance.Measured("Raspberry Pi 4B", "UM25C", "ONNX Runtime"),
                     Provenance.Estimated("profile"), Provenance.Scored("CIFAR-10", "test"),
                 })
        {
            string json = JsonSerializer.Serialize(p, options);
            Assert.Contains($"\"description\":{JsonSerializer.Serialize(p.Description)}", json);
            Assert.Contains($"\"kind\":\"{p.Kind}\"", json);
            Assert.Equal(p, JsonSerializer.Deserialize<Provenance>(json, options));
        }
    }

    [Fact]
    public void RequiresWhatEachKindNeeds()
    {
        Assert.Contains("device", Assert.Throws<ArgumentException>(() => Provenance.Measured(" ", "INA260", null)).Message);
        Assert.Contains("profile", Assert.Throws<ArgumentException>(() => Provenance.Estimated("")).Message);
        Assert.Contains("data set", Assert.Throws<ArgumentException>(() => Provenance.Scored("", "test")).Message);
        // An estimate that carries a meter would read as a measurement.
        Assert.Throws<ArgumentException>(() => new Provenance(ProvenanceKind.Estimated, meter: "INA260", profile: "p"));
        Assert.Throws<ArgumentException>(() => new Provenance(ProvenanceKind.Computed, device: "Pi"));
    }
}

public sealed class ObjectiveValueTests
{
    [Fact]
    public void ReadsWithItsProvenanceAndFidelity()
    {
        var v = new ObjectiveValue(ObjectiveKind.Accuracy, 0.9125, Provenance.Scored("CIFAR-10", "validation"), Fidelities.FineTuned(1));
        Assert.Equal("accuracy = 91.25 % (scored on the validation split of CIFAR-10; fine-tuned 1 epoch)", v.ToString());
        Assert.Equal("fine-tuned 3 epochs", Fidelities.FineTuned(3));
        Assert.Equal("bn-recalibrated", Fidelities.BnRecalibrated);
        Assert.Throws<ArgumentException>(() => new ObjectiveValue(ObjectiveKind.Macs, double.NaN, Provenance.Computed, Fidelities.Computed));
        Assert.Throws<ArgumentException>(() => new ObjectiveValue(ObjectiveKind.Macs, 1, Provenance.Computed, " "));
    }

    [Fact]
    public void ToDictionaryRejectsRepeats()
    {
        var macs = new ObjectiveValue(ObjectiveKind.Macs, 5, Provenance.Computed, Fidelities.Computed);
        Assert.Equal(5, ObjectiveValue.ToDictionary([macs])[ObjectiveKind.Macs]);
        Assert.Contains("macs", Assert.Throws<ArgumentException>(() => ObjectiveValue.ToDictionary([macs, macs])).Message);
    }

    [Fact]
    public void SerialisesToJson()
    {
        var v = new ObjectiveValue(ObjectiveKind.Energy, 42.5, Provenance.Estimated("pi4b"), Fidelities.Computed);
        string json = JsonSerializer.Serialize(v, new JsonSerializerOptions(JsonSerializerDefaults.Web));
        Assert.Contains("\"kind\":\"energy\"", json);
        Assert.Contains("\"value\":42.5", json);
        Assert.Contains("estimated, not measured", json);
        Assert.Equal(v, JsonSerializer.Deserialize<ObjectiveValue>(json, new JsonSerializerOptions(JsonSerializerDefaults.Web)));
    }
}
