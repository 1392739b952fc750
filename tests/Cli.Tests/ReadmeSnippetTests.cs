using System.Text;
using System.Text.RegularExpressions;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Every C# snippet of the README files compiles against the libraries, as a reader would paste it: its own using lines,
/// nothing else, in a project outside the repository. A snippet that uses variables it does not declare (an
/// <c>IDataView</c> the reader already has) declares them in a hidden line above it,
/// <c>&lt;!-- snippet-prelude: IDataView trainData = null!; --&gt;</c>. Errors point at the README's own lines.
/// </summary>
[Collection(nameof(SourceBuildCollection))]
public sealed partial class ReadmeSnippetTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("readme-snippets-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public void EveryCSharpSnippetCompiles()
    {
        string root = Repository.Root;
        var documents = new[] { "README.md", Path.Combine("src", "MLNet", "README.md") }
            .Concat(Directory.GetFiles(Path.Combine(root, "examples"), "README.md", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(root, f)));
        var snippets = documents.SelectMany(d => Snippets(root, d)).ToList();
        // The report's card gives one too.
        string card = Path.Combine("src", "Optimizer", "Reporting", "Recommendation.cs");
        int cardLine = Array.FindIndex(File.ReadAllLines(Path.Combine(root, card)), l => l.Contains("const string CSharpSnippet", StringComparison.Ordinal)) + 2;
        snippets.Add((card, cardLine, Optimizer.Reporting.Recommendation.CSharpSnippet.ReplaceLineEndings("\n"), ""));
        Assert.True(snippets.Count >= 4, $"{snippets.Count} snippets found");

        File.WriteAllText(Path.Combine(directory, "snippets.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><TargetFramework>net10.0</TargetFramework><Nullable>enable</Nullable><ImplicitUsings>enable</ImplicitUsings>
                <NoWarn>CS1998;CS0219;CS0168;NU1603;NU1608</NoWarn></PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{Path.Combine(root, "src", "Optimizer", "Optimizer.csproj")}" />
                <ProjectReference Include="{Path.Combine(root, "src", "MLNet", "MLNet.csproj")}" />
              </ItemGroup>
            </Project>
            """);
        for (int i = 0; i < snippets.Count; i++)
        {
            var (document, line, code, prelude) = snippets[i];
            var lines = code.Split('\n');
            var usings = lines.TakeWhile(l => l.StartsWith("using ", StringComparison.Ordinal) && !l.StartsWith("using var", StringComparison.Ordinal)
                                              || l.StartsWith("//", StringComparison.Ordinal) || l.Trim().Length == 0).ToList();
            var source = new StringBuilder();
            foreach (string u in usings.Where(u => u.Trim().Length > 0)) source.AppendLine(u);
            source.AppendLine($"static class Snippet{i}").AppendLine("{").AppendLine("    static async Task Run()").AppendLine("    {");
            string path = Path.Combine(root, document);
            source.AppendLine($"#line {line - 2} \"{path}\"").AppendLine(prelude); // the hidden line above the block
            source.AppendLine($"#line {line + usings.Count} \"{path}\"");
            foreach (string body in lines.Skip(usings.Count)) source.AppendLine(body);
            source.AppendLine("#line default").AppendLine("    }").AppendLine("}");
            File.WriteAllText(Path.Combine(directory, $"Snippet{i}.cs"), source.ToString());
        }

        var (code2, output) = DotnetTool.Run("dotnet", directory, TimeSpan.FromMinutes(8), "build", "--disable-build-servers", "-c", "Release", "-nologo", "-v", "quiet");
        Assert.True(code2 == 0, string.Join('\n', output.Split('\n').Where(l => l.Contains("error", StringComparison.Ordinal)).Distinct().Take(20)));
    }

    [GeneratedRegex(@"^<!--\s*snippet-prelude:\s*(.*?)\s*-->$")]
    private static partial Regex PreludeLine();

    /// <summary>The ```csharp blocks of a document: its path, the line of the block's first code line, the code, and the prelude.</summary>
    static IEnumerable<(string Document, int Line, string Code, string Prelude)> Snippets(string root, string document)
    {
        var lines = File.ReadAllLines(Path.Combine(root, document));
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Trim() != "```csharp") continue;
            int start = i + 1, end = start;
            while (end < lines.Length && lines[end].Trim() != "```") end++;
            var prelude = i > 0 && PreludeLine().Match(lines[i - 1].Trim()) is { Success: true } m ? m.Groups[1].Value : "";
            yield return (document, start + 1, string.Join('\n', lines[start..end]), prelude);
            i = end;
        }
    }

}
