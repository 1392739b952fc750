using System.Text.Json;
using System.Text.Json.Serialization;

namespace ParetoPrune.Devices;

/// <summary>What a model costs, counted on its ONNX graph for one input shape (batch included).</summary>
/// <param name="Macs">Multiply-accumulates of one run.</param>
/// <param name="WeightBytes">Bytes of the weights, all read once per run.</param>
/// <param name="Layers">Graph nodes (operators), each a kernel launch with its own fixed cost.</param>
/// <param name="Int8Macs">Of <paramref name="Macs"/>, those of layers that run on 8-bit integer kernels (a quantized model).</param>
public sealed record ModelCounts(long Macs, long WeightBytes, int Layers, long Int8Macs = 0);

/// <summary>
/// A rough model of a device, for when the device itself is not at hand: latency of one run is
/// <c>FixedMs + MsPerGmac·MACs/10⁹ + MsPerMegabyte·weight bytes/10⁶ + MsPerLayer·layers</c>; power is
/// <see cref="ActiveWatts"/> while running and <see cref="IdleWatts"/> otherwise. Everything it predicts is an
/// estimate and is labelled so (<see cref="EstimatedDevice"/>). Fit one to your own board with <see cref="ProfileCalibration"/>.
/// </summary>
/// <param name="Name">Short identifier, e.g. "raspberry-pi-4b".</param>
/// <param name="Device">The device it describes, e.g. "Raspberry Pi 4B".</param>
/// <param name="Description">How the coefficients were obtained, and how far to trust them.</param>
/// <param name="Source">Where the underlying figures come from.</param>
/// <param name="IdleWatts">Board power at rest; null when unknown (no energy above idle then).</param>
/// <param name="ActiveWatts">Board power while running a model; null when unknown (no energy estimate then).</param>
/// <param name="Int8MsPerGmac">Milliseconds per 10⁹ MACs on 8-bit integer kernels; null when unknown (INT8 layers are then
/// estimated at the float rate, and the description says so).</param>
public sealed record DeviceProfile(
    string Name, string Device, string Description, string Source,
    double FixedMs, double MsPerGmac, double MsPerMegabyte, double MsPerLayer,
    double? IdleWatts, double? ActiveWatts, double? Int8MsPerGmac = null)
{
    /// <summary>How far off a latency estimate may be: its 90 % interval is [estimate / f, estimate × f] (from the fit's
    /// leave-one-out errors, <see cref="ProfileFit.LatencyErrorFactor"/>). Null when unknown.</summary>
    public double? LatencyErrorFactor { get; init; }

    /// <summary>The same for <see cref="ActiveWatts"/>: the board's power while running lies in [W / f, W × f]. Null when unknown.</summary>
    public double? PowerErrorFactor { get; init; }

    /// <summary>The energy estimate's error factor: latency and power errors as independent log-normal errors, so their
    /// logarithms add in quadrature, exp(√(ln²f_latency + ln²f_power)). Null when the latency error is unknown.</summary>
    [JsonIgnore]
    public double? EnergyErrorFactor => LatencyErrorFactor is { } f
        ? Math.Exp(Math.Sqrt(Math.Pow(Math.Log(f), 2) + Math.Pow(Math.Log(PowerErrorFactor ?? 1), 2)))
        : null;

    /// <summary>The 90 % interval of a latency estimate; null when the profile does not know its error.</summary>
    public (double Low, double High)? LatencyInterval(double ms) => Within(ms, LatencyErrorFactor);

    /// <summary>The 90 % interval of an energy estimate (<see cref="EnergyErrorFactor"/>).</summary>
    public (double Low, double High)? EnergyInterval(double millijoules) => Within(millijoules, EnergyErrorFactor);

    static (double Low, double High)? Within(double value, double? factor) => factor is { } f ? (value / f, value * f) : null;

    static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        WriteIndented = true,
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    /// <summary>The shipped Raspberry Pi 4B profile (rough; see its <see cref="Description"/>).</summary>
    public static DeviceProfile RaspberryPi4B { get; } = LoadEmbedded("raspberry-pi-4b.json");

    /// <summary>Predicted milliseconds of one run.</summary>
    public double EstimateLatencyMs(ModelCounts counts)
    {
        ArgumentNullException.ThrowIfNull(counts);
        if (counts.Macs < 0 || counts.WeightBytes < 0 || counts.Layers < 0 || counts.Int8Macs < 0 || counts.Int8Macs > counts.Macs)
            throw new ArgumentException($"model counts cannot be negative, nor INT8 MACs more than all MACs ({counts})", nameof(counts));
        return FixedMs + MsPerGmac * (counts.Macs - counts.Int8Macs) / 1e9 + (Int8MsPerGmac ?? MsPerGmac) * counts.Int8Macs / 1e9
               + MsPerMegabyte * counts.WeightBytes / 1e6 + MsPerLayer * counts.Layers;
    }

    public static DeviceProfile Load(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"cannot read device profile '{path}': {e.Message}", e);
        }
        return Parse(json, path);
    }

    /// <param name="sourceName">Names the JSON in error messages (a path).</param>
    public static DeviceProfile Parse(string json, string sourceName = "device profile")
    {
        DeviceProfile? profile;
        try
        {
            profile = JsonSerializer.Deserialize<DeviceProfile>(json, Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{sourceName} is not a valid device profile: {e.Message}", e);
        }
        if (profile is null) throw new InvalidDataException($"{sourceName} is empty (null)");
        return profile.Validated(sourceName);
    }

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public void Save(string path) => File.WriteAllText(path, ToJson() + Environment.NewLine);

    /// <summary>This profile, or an <see cref="InvalidDataException"/> naming what is wrong with it.</summary>
    internal DeviceProfile Validated(string sourceName)
    {
        string? problem =
            string.IsNullOrWhiteSpace(Name) ? "it has no name"
            : string.IsNullOrWhiteSpace(Device) ? "it does not name its device"
            : string.IsNullOrWhiteSpace(Description) ? "it does not say how it was derived (description)"
            : new[] { FixedMs, MsPerGmac, MsPerMegabyte, MsPerLayer, Int8MsPerGmac ?? 0 }.Any(c => !double.IsFinite(c) || c < 0)
                ? "latency coefficients must be finite and non-negative"
            : LatencyErrorFactor is < 1 || PowerErrorFactor is < 1 || LatencyErrorFactor is { } lf && !double.IsFinite(lf) || PowerErrorFactor is { } pf && !double.IsFinite(pf)
                ? "error factors must be finite and at least 1"
            : FixedMs + MsPerGmac + MsPerMegabyte + MsPerLayer <= 0 ? "all latency coefficients are zero"
            : IdleWatts is { } idle && (!double.IsFinite(idle) || idle < 0) ? $"idle power {idle} W is not a non-negative number"
            : ActiveWatts is { } active && (!double.IsFinite(active) || active <= 0) ? $"active power {active} W is not a positive number"
            : IdleWatts > ActiveWatts ? $"idle power {IdleWatts} W exceeds active power {ActiveWatts} W"
            : null;
        return problem is null ? this : throw new InvalidDataException($"{sourceName} ('{Name}'): {problem}");
    }

    static DeviceProfile LoadEmbedded(string file)
    {
        string resource = $"ParetoPrune.Devices.Profiles.{file}";
        using var stream = typeof(DeviceProfile).Assembly.GetManifestResourceStream(resource)
            ?? throw new InvalidOperationException($"the build did not embed {resource} (see Devices.csproj)");
        using var reader = new StreamReader(stream);
        return Parse(reader.ReadToEnd(), resource);
    }
}
