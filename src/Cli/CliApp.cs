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
        if (output != Console.Out) console.Profile.Width = 160;
        bool interactive = output == Console.Out && !Console.IsOutputRedirected;
        var context = new CliContext(console, output, error, interactive);

        var root = new RootCommand("ParetoPrune: find how many filters each layer of a CNN should keep, " +
                                   "and get the Pareto front of accuracy, FLOPs, size, latency and energy.")
        {
            InspectCommand.Create(context),
            PruneCommand.Create(context),
            TrainCommands.Train(context),
            TrainCommands.Finetune(context),
            EvaluateCommand.Create(context),
            MeasureCommand.Create(context),
            AgentCommand.Create(context),
            CalibrateCommand.Create(context),
            SearchCommands.Search(context),
            SearchCommands.Demo(context),
            SearchCommands.Report(context),
            SearchCommands.Export(context),
            SearchCommands.Studies(context),
            CompareCommand.Create(context),
        };
        try
        {
            var parse = root.Parse(SearchCommands.ExpandConfig(args));
            var configuration = new InvocationConfiguration { Output = output, Error = error, EnableDefaultExceptionHandler = false };
            // A search or comparison stops cleanly on Ctrl-C itself (finishing the trials in flight can take longer than System.CommandLine waits).
            if (args.Length > 0 && Interruption.Commands.Contains(args[0])) configuration.ProcessTerminationTimeout = null;
            return await parse.InvokeAsync(configuration);
        }
        catch (Exception e) when (e is OnnxModelException or FileNotFoundException or DirectoryNotFoundException
                                      or FormatException or InvalidDataException or ArgumentException or UserInputException or PruningException
                                      or Objectives.Data.DatasetFormatException or Optimizer.Training.TrainingDivergedException
                                      or Devices.Energy.EnergyUnavailableException or Devices.Remote.DeviceAgentException)
        {
            error.WriteLine($"error: {e.Message}");
            return ExitCodes.BadInput;
        }
    }
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

public static class ExitCodes
{
    public const int Success = 0;
    public const int BadInput = 2;
}
