using System.Text.Json;
using System.Text.Json.Serialization;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// How libtorch's convolution kernels are used (<see cref="KernelSelection"/> chooses per machine). Stored, printed and
/// accepted by PARETOPRUNE_ONEDNN by <see cref="KernelModes.Name"/>: "off", "native", "channels-last", "avx2", "sse41".
/// </summary>
[JsonConverter(typeof(KernelModeJsonConverter))]
public enum KernelMode
{
    /// <summary>ATen's own kernels: the reference, correct everywhere.</summary>
    Off,
    /// <summary>oneDNN on NCHW tensors.</summary>
    Native,
    /// <summary>oneDNN on channels-last tensors (NCHW shape, NHWC memory: oneDNN's fastest layout, other kernels).</summary>
    ChannelsLast,
    /// <summary>oneDNN on NCHW tensors, its instruction set capped at AVX2 (other kernels: correct on CPUs where the widest are not).</summary>
    Avx2,
    /// <summary>oneDNN on NCHW tensors, capped at SSE4.1.</summary>
    Sse41,
}

public static class KernelModes
{
    public static IReadOnlyList<KernelMode> All { get; } = Enum.GetValues<KernelMode>();

    /// <summary>The mode as stored and printed: "channels-last".</summary>
    public static string Name(this KernelMode mode) => mode switch
    {
        KernelMode.Off => "off",
        KernelMode.Native => "native",
        KernelMode.ChannelsLast => "channels-last",
        KernelMode.Avx2 => "avx2",
        KernelMode.Sse41 => "sse41",
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "unknown kernel mode"),
    };

    /// <summary>The ONEDNN_MAX_CPU_ISA value a capped mode sets; null for the uncapped ones.</summary>
    public static string? Cap(this KernelMode mode) => mode switch
    {
        KernelMode.Avx2 => "AVX2",
        KernelMode.Sse41 => "SSE41",
        _ => null,
    };

    public static bool TryParse(string? text, out KernelMode mode)
    {
        foreach (var m in All)
            if (string.Equals(m.Name(), text?.Trim(), StringComparison.OrdinalIgnoreCase))
            {
                mode = m;
                return true;
            }
        mode = default;
        return false;
    }

    /// <exception cref="ArgumentException">Not a mode's name; the message lists them.</exception>
    public static KernelMode Parse(string text) =>
        TryParse(text, out var mode) ? mode : throw new ArgumentException($"{text} is not a kernel mode; use one of {string.Join(", ", All.Select(Name))}");
}

/// <summary>Kernel modes in JSON (the per-machine cache, a capped check's result) by name, as before they were a type.</summary>
sealed class KernelModeJsonConverter : JsonConverter<KernelMode>
{
    public override KernelMode Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        KernelModes.TryParse(reader.GetString(), out var mode) ? mode : throw new JsonException($"unknown kernel mode '{reader.GetString()}'");

    public override void Write(Utf8JsonWriter writer, KernelMode value, JsonSerializerOptions options) => writer.WriteStringValue(value.Name());
}
