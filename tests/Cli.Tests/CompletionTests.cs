using System.Diagnostics;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>tools/completion/paretoprune.bash, sourced in a real bash and driven the way bash drives it on Tab.</summary>
public class CompletionTests
{
    static string Script => Path.Combine(Repository.Root, "tools", "completion", "paretoprune.bash");

    /// <summary>What Tab offers after <paramref name="line"/> (the cursor at its end).</summary>
    static string[] Complete(string line)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["PARETOPRUNE"] = $"dotnet {Path.Combine(AppContext.BaseDirectory, "paretoprune.dll")}";
        start.Environment["LINE"] = line;
        start.ArgumentList.Add("-c");
        start.Environment["SCRIPT"] = Script;
        start.ArgumentList.Add("""
            source "$SCRIPT"
            COMP_LINE="$LINE"; COMP_POINT=${#LINE}; read -ra COMP_WORDS <<< "$LINE"
            [[ "$LINE" == *" " ]] && COMP_WORDS+=("")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            _paretoprune_complete
            printf '%s\n' "${COMPREPLY[@]}"
            """);
        using var bash = Process.Start(start)!;
        string output = bash.StandardOutput.ReadToEnd();
        bash.WaitForExit();
        Assert.True(bash.ExitCode == 0, bash.StandardError.ReadToEnd());
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    [Fact]
    public void TabCompletesCommandsOptionsAndValues()
    {
        Assert.Equal(["search"], Complete("paretoprune sea"));
        Assert.Contains("studies", Complete("paretoprune "));
        Assert.Equal(["--trials"], Complete("paretoprune search --tri"));
        Assert.Contains("--measure-budget", Complete("paretoprune measure m.onnx --mea"));
        Assert.Equal(["validation"], Complete("paretoprune evaluate m.onnx --split va"));
        Assert.Equal(["pi4-estimate"], Complete("paretoprune measure m.onnx --device pi"));
        Assert.Contains("nsga2", Complete("paretoprune search m.onnx --sampler "));
    }
}
