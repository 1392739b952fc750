using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace ParetoPrune.Objectives;

/// <summary>What a candidate model is judged on. Written in JSON by its canonical name (<see cref="ObjectiveCatalog"/>).</summary>
[JsonConverter(typeof(ObjectiveKindJsonConverter))]
public enum ObjectiveKind
{
    Accuracy,
    Macs,
    Params,
    DenseBytes,
    CompressedBytes,
    Latency,
    Energy,
    PeakActivationBytes,
}

public enum ObjectiveDirection { Minimise, Maximise }

/// <summary>The physical quantity an objective measures: it decides which units a bound may be written in.</summary>
public enum Quantity { Fraction, Count, Bytes, Time, Energy }

/// <summary>An objective's canonical name (CLI and JSON), direction and the unit its values are held in.</summary>
public sealed record ObjectiveInfo(ObjectiveKind Kind, string Name, ObjectiveDirection Direction, Quantity Quantity, string Unit, string Description)
{
    /// <summary>What a plot's axis calls it ("energy per inference", "MACs").</summary>
    public string Label => Kind switch
    {
        ObjectiveKind.Accuracy => "accuracy",
        ObjectiveKind.Macs => "MACs",
        ObjectiveKind.Params => "parameters",
        ObjectiveKind.DenseBytes => "model size",
        ObjectiveKind.CompressedBytes => "compressed model size",
        ObjectiveKind.Latency => "latency per inference",
        ObjectiveKind.Energy => "energy per inference",
        ObjectiveKind.PeakActivationBytes => "peak activation memory",
        _ => Name,
    };

    public bool IsMaximised => Direction == ObjectiveDirection.Maximise;
}

/// <summary>The objectives this tool knows, their names, aliases and how their values read.</summary>
public static class ObjectiveCatalog
{
    // Indexed by the enum's value.
    static readonly ObjectiveInfo[] Infos =
    [
        new(ObjectiveKind.Accuracy, "accuracy", ObjectiveDirection.Maximise, Quantity.Fraction, "fraction",
            "top-1 accuracy, a fraction in [0, 1] (shown as %)"),
        new(ObjectiveKind.Macs, "macs", ObjectiveDirection.Minimise, Quantity.Count, "MACs",
            "multiply-accumulates per inference (what pruning papers call FLOPs)"),
        new(ObjectiveKind.Params, "params", ObjectiveDirection.Minimise, Quantity.Count, "parameters", "learnable parameters"),
        new(ObjectiveKind.DenseBytes, "bytes", ObjectiveDirection.Minimise, Quantity.Bytes, "B", "size of the model file as written"),
        new(ObjectiveKind.CompressedBytes, "compressed-bytes", ObjectiveDirection.Minimise, Quantity.Bytes, "B",
            "size of the model file after general-purpose compression (where zeroed weights pay off)"),
        new(ObjectiveKind.Latency, "latency", ObjectiveDirection.Minimise, Quantity.Time, "ms", "time per inference"),
        new(ObjectiveKind.Energy, "energy", ObjectiveDirection.Minimise, Quantity.Energy, "mJ", "energy per inference"),
        new(ObjectiveKind.PeakActivationBytes, "peak-memory", ObjectiveDirection.Minimise, Quantity.Bytes, "B",
            "peak bytes of activations held at once"),
    ];

    // Keys are compared without case, hyphens, underscores or spaces, so "peak_memory", "PeakActivationBytes" and
    // "Compressed Bytes" all resolve.
    static readonly Dictionary<string, ObjectiveKind> Names = new(StringComparer.Ordinal)
    {
        ["accuracy"] = ObjectiveKind.Accuracy, ["acc"] = ObjectiveKind.Accuracy, ["top1"] = ObjectiveKind.Accuracy,
        ["macs"] = ObjectiveKind.Macs, ["mac"] = ObjectiveKind.Macs, ["flops"] = ObjectiveKind.Macs, ["flop"] = ObjectiveKind.Macs,
        ["params"] = ObjectiveKind.Params, ["param"] = ObjectiveKind.Params, ["parameters"] = ObjectiveKind.Params,
        ["bytes"] = ObjectiveKind.DenseBytes, ["size"] = ObjectiveKind.DenseBytes, ["densebytes"] = ObjectiveKind.DenseBytes,
        ["modelsize"] = ObjectiveKind.DenseBytes, ["filesize"] = ObjectiveKind.DenseBytes,
        ["compressedbytes"] = ObjectiveKind.CompressedBytes, ["compressed"] = ObjectiveKind.CompressedBytes,
        ["compressedsize"] = ObjectiveKind.CompressedBytes,
        ["latency"] = ObjectiveKind.Latency, ["time"] = ObjectiveKind.Latency, ["inferencetime"] = ObjectiveKind.Latency,
        ["energy"] = ObjectiveKind.Energy, ["energyperinference"] = ObjectiveKind.Energy,
        ["peakmemory"] = ObjectiveKind.PeakActivationBytes, ["peakactivationbytes"] = ObjectiveKind.PeakActivationBytes,
        ["peakactivations"] = ObjectiveKind.PeakActivationBytes, ["memory"] = ObjectiveKind.PeakActivationBytes,
    };

    public static IReadOnlyList<ObjectiveInfo> All => Infos;

    /// <summary>The canonical names, comma-separated, for error messages.</summary>
    public static string KnownNames => string.Join(", ", Infos.Select(i => i.Name));

    /// <summary>The objective's CSV column: its name, with the unit where the name does not say it (latency_ms,
    /// energy_mJ, peak-memory_bytes); accuracy is a fraction in [0, 1] and counts have no unit.</summary>
    public static string ColumnName(this ObjectiveKind kind) => kind.Info() switch
    {
        { Quantity: Quantity.Time or Quantity.Energy } info => $"{info.Name}_{info.Unit}",
        { Quantity: Quantity.Bytes, Name: var name } when !name.Contains("bytes") => $"{name}_bytes",
        var info => info.Name,
    };

    public static ObjectiveInfo Info(this ObjectiveKind kind) =>
        (uint)kind < (uint)Infos.Length ? Infos[(int)kind] : throw new ArgumentOutOfRangeException(nameof(kind), kind, "not an objective");

    public static string Name(this ObjectiveKind kind) => kind.Info().Name;
    public static bool IsMaximised(this ObjectiveKind kind) => kind.Info().IsMaximised;

    public static bool TryParse(string? text, out ObjectiveKind kind)
    {
        kind = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        string key = string.Concat(text.Where(c => c is not ('-' or '_' or ' '))).ToLowerInvariant();
        return Names.TryGetValue(key, out kind);
    }

    /// <exception cref="FormatException">The name is not an objective; the message lists the known ones.</exception>
    public static ObjectiveKind Parse(string text) => TryParse(text, out var kind)
        ? kind
        : throw new FormatException($"unknown objective '{text}': known objectives are {KnownNames} (aliases: flops for macs, size for bytes)");

    /// <summary>A value for people: accuracy in %, counts with k/M/G, bytes in KiB/MiB/GiB, latency in ms, energy in mJ.</summary>
    public static string Format(this ObjectiveKind kind, double value)
    {
        static string N(double v, string format = "0.##") => v.ToString(format, CultureInfo.InvariantCulture);
        double a = Math.Abs(value);
        return kind.Info().Quantity switch
        {
            Quantity.Fraction => N(value * 100) + " %",
            Quantity.Count => a >= 1e9 ? N(value / 1e9) + " G" : a >= 1e6 ? N(value / 1e6) + " M" : a >= 1e3 ? N(value / 1e3) + " k" : N(value),
            Quantity.Bytes => a >= 1 << 30 ? N(value / (1 << 30)) + " GiB" : a >= 1 << 20 ? N(value / (1 << 20)) + " MiB"
                : a >= 1 << 10 ? N(value / (1 << 10)) + " KiB" : N(value) + " B",
            Quantity.Time => N(value, "G4") + " ms",
            _ => N(value, "G4") + " mJ",
        };
    }
}

/// <summary>Writes an objective by its canonical name ("peak-memory") and reads any name or alias, as values and as
/// dictionary keys (<c>{ "macs": 3.1e8, "accuracy": 0.92 }</c>).</summary>
public sealed class ObjectiveKindJsonConverter : JsonConverter<ObjectiveKind>
{
    public override ObjectiveKind Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw new JsonException($"an objective must be a name ({ObjectiveCatalog.KnownNames})");
        return FromName(reader.GetString());
    }

    public override void Write(Utf8JsonWriter writer, ObjectiveKind value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name());

    public override ObjectiveKind ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        FromName(reader.GetString());

    public override void WriteAsPropertyName(Utf8JsonWriter writer, ObjectiveKind value, JsonSerializerOptions options) =>
        writer.WritePropertyName(value.Name());

    static ObjectiveKind FromName(string? name)
    {
        try { return ObjectiveCatalog.Parse(name ?? ""); }
        catch (FormatException e) { throw new JsonException(e.Message, e); }
    }
}
