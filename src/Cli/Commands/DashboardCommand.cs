using System.CommandLine;
using System.Runtime.InteropServices;
using ParetoPrune.Cli.Dashboard;
using ParetoPrune.Devices.Agent;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune dashboard RUN… [--listen 127.0.0.1:8650]</c>: follow searches live in a browser.</summary>
static class DashboardCommand
{
    public static Command Create(CliContext context)
    {
        var runs = new Argument<DirectoryInfo[]>("runs") { Description = "run directories of searches (running, finished or not started yet)", Arity = ArgumentArity.OneOrMore };
        var listen = new Option<string>("--listen") { Description = "address and port (loopback by default: the page shows your studies to whoever reaches it)", DefaultValueFactory = _ => "127.0.0.1:8650" };
        var command = new Command("dashboard", "Serve a page that follows searches while they run: stage progress, the fronts, the hypervolume, every trial; several studies side by side.")
        {
            runs, listen,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            void Stop(PosixSignalContext signal) { signal.Cancel = true; stop.Cancel(); }
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            // A taken port surfaces as Kestrel's IOException: exit 2 with its message, as for the agent.
            await using var server = new DashboardServer(parse.GetValue(runs)!.Select(r => r.FullName).ToList(), ListenAddress.Parse(parse.GetValue(listen)!));
            await server.StartAsync(stop.Token);
            context.Console.MarkupLine($"dashboard: [bold]{server.Address}[/] (Ctrl-C stops it)");
            try { await Task.Delay(Timeout.Infinite, stop.Token); }
            catch (OperationCanceledException) { }
            return ExitCodes.Success;
        });
        return command;
    }
}
