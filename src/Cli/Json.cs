using System.Text.Json;

namespace ParetoPrune.Cli;

/// <summary>One JSON style for every <c>--json</c> output: indented, camelCase at every level (records included;
/// dictionary keys such as class names stay as they are), characters such as × unescaped.</summary>
static class Json
{
    internal static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static void Write(TextWriter output, object document) => output.WriteLine(JsonSerializer.Serialize(document, Options));
}
