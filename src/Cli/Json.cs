using System.Text.Json;

namespace ParetoPrune.Cli;

/// <summary>One JSON style for every <c>--json</c> output: indented, camelCase as written.</summary>
static class Json
{
    static readonly JsonSerializerOptions Options = new() { WriteIndented = true };

    public static void Write(TextWriter output, object document) => output.WriteLine(JsonSerializer.Serialize(document, Options));
}
