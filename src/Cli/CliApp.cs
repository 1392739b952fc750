using System.CommandLine;
using ParetoPrune.Cli.Commands;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Pruning;
using Spectre.Console;

namespace ParetoPrune.Cli;

/// <summary>The <c>paretoprune</c> command line. Output goes to the given writers so tests can run it in-process.</summary>
public static class CliApp
{
    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output),
            Ansi = output == Console.Out && !Console.IsOutputRedirected ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = output == Console.Out && !Console.IsOutputRedirected ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = output == Console.Out && !Console.IsOutputRedirected ? InteractionSupport.Yes : InteractionSupport.No,
        });
        // Redirected output has no terminal to fit: COLUMNS when set, else wide enough that tables and paths do not wrap.
        if (output != Console.Out || Console.IsOutputRedirected)
            console.Profile.Width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : 200;
        bool interactive = output == Console.Out && !Console.IsOutputRedirected;
        var context = new CliContext(console, output, error, interactive);

        var root = new RootCommand("ParetoPrune: find how many filters each layer of a CNN should keep, " +
                                   "and get the Pareto front of accuracy, FLOPs, size, latency and energy.")
        {
            InspectCommand.Create(context),
            PruneCommand.Create(context),
            QuantizeCommand.Create(context),
            TrainCommands.Train(context),
            TrainCommands.Finetune(context),
            EvaluateCommand.Create(context),
            MeasureCommand.Create(context),
            AgentCommand.Create(context),
            CalibrateCommand.Create(context),
            SearchCommands.Search(context),
            SearchCommands.Demo(context),
            SearchCommands.Worker(context),
            SearchCommands.Report(context),
            SearchCommands.Export(context),
            SearchCommands.Studies(context),
            CompareCommand.Create(context),
            DashboardCommand.Create(context),
            KernelCheckCommand.Create(context),
        };
        bool verbose = args.Contains("--verbose");
        root.Options.Add(new Option<bool>("--verbose") { Description = "on an internal error, print the stack trace", Recursive = true });
        try
        {
            var parse = root.Parse(SearchCommands.ExpandConfig(args));
            if (parse.Errors.Count > 0)
            {
                // One line and a hint, not the whole help text.
                string command = parse.CommandResult.Command == root ? "" : parse.CommandResult.Command.Name + " ";
                var messages = parse.Errors.Select(e => Readable(e.Message)).Distinct().ToList();
                // "paretoprune frobnicate": the unknown word is the error, not the missing command it stands in for.
                if (messages.Any(m => m.StartsWith("Unrecognized command", StringComparison.Ordinal)))
                    messages.RemoveAll(m => m.StartsWith("Required command was not provided", StringComparison.Ordinal));
                error.WriteLine($"error: {string.Join("; ", messages.Take(3))}");
                error.WriteLine($"see: paretoprune {command}--help");
                return ExitCodes.BadInput;
            }
            var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
            // A search or comparison stops cleanly on Ctrl-C itself (finishing the trials in flight can take longer than System.CommandLine waits).
            if (args.Length > 0 && Interruption.Commands.Contains(args[0])) configuration.ProcessTerminationTimeout = null;
            return await parse.InvokeAsync(configuration);
        }
        catch (Exception e) when (e is OnnxModelException or FileNotFoundException or DirectoryNotFoundException
                                      or FormatException or InvalidDataException or ArgumentException or UserInputException or PruningException
                                      or Objectives.Data.DatasetFormatException or Optimizer.Training.TrainingDivergedException
                                      or Devices.Energy.EnergyUnavailableException or Devices.Remote.DeviceAgentException
                                      or IOException or UnauthorizedAccessException)
        {
            // What the user can fix (including the file system: a folder where a file should go, a full disk, no permission).
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            error.WriteLine($"error: internal error ({e.GetType().Name}): {e.Message}");
            error.WriteLine(verbose ? e.ToString() : "run again with --verbose for the stack trace, and report it");
            return ExitCodes.InternalError;
        }
    }

    /// <summary>System.CommandLine's messages name .NET types ("System.Nullable`1[System.Double]"): say what to type instead.</summary>
    internal static string Readable(string message) =>
        System.Text.RegularExpressions.Regex.Replace(message.TrimEnd('.'), @"expected type '(System\.Nullable`1\[)?System\.(\w+)\]?'", m => m.Groups[2].Value switch
        {
            "Int32" or "Int64" => "a whole number",
            "Double" or "Single" => "a number",
            "Boolean" => "true or false",
            var other => other,
        });
}

/// <summary>Where a command writes: the Spectre console for people, the raw writer for JSON.</summary>
public sealed record CliContext(IAnsiConsole Console, TextWriter Output, TextWriter Error, bool IsInteractive)
{
    /// <summary>Where progress goes: the console, or standard error when standard output carries JSON.</summary>
    public CliContext ForProgress(bool json) => json
        ? this with
        {
            Console = AnsiConsole.Create(new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(Error), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            }),
            IsInteractive = false,
        }
        : this;
}

/// <summary>A mistake in what the user asked for; the message says what and how to fix it.</summary>
public sealed class UserInputException(string message) : Exception(message);

/// <summary>What <c>paretoprune</c> exits with (README, "Exit codes").</summary>
public static class ExitCodes
{
    public const int Success = 0;

    /// <summary>An internal error: a bug to report (the trace under --verbose).</summary>
    public const int InternalError = 1;

    /// <summary>Bad input or usage: the message says what to fix.</summary>
    public const int BadInput = 2;

    /// <summary>The run finished but produced nothing usable (every trial or point failed, or no model reached the final
    /// stage): one line counts the reasons and says what to do next.</summary>
    public const int NoResult = 3;

    /// <summary>Stopped by the user (Ctrl-C): 128 + SIGINT, as shells report it; a search or comparison resumes.</summary>
    public const int Stopped = 130;
}
