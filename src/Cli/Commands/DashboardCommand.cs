using System.CommandLine;
using System.Runtime.InteropServices;
using ParetoPrune.Cli.Dashboard;
using ParetoPrune.Devices.Agent;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune dashboard [RUN…] [--storage URL --study NAME…] [--listen 127.0.0.1:8650]</c>: follow searches
/// live in a browser, local and shared side by side.</summary>
static class DashboardCommand
{
    public static Command Create(CliContext context)
    {
        var runs = new Argument<DirectoryInfo[]>("runs") { Description = "run directories of searches (running, finished or not started yet)", Arity = ArgumentArity.ZeroOrMore };
        var storage = new Option<string?>("--storage") { Description = "a PostgreSQL server whose studies (--study) to show beside the run directories: postgresql://USER@HOST[:PORT]/DATABASE" };
        var studies = new Option<string[]>("--study") { Description = "a study on --storage to show (repeat --study for several)" };
        var listen = new Option<string>("--listen") { Description = "address and port (loopback by default: the page shows your studies to whoever reaches it)", DefaultValueFactory = _ => "127.0.0.1:8650" };
        var command = new Command("dashboard", "Serve a page that follows searches while they run: stage progress, the fronts, the hypervolume, every trial; several studies side by side.")
        {
            runs, storage, studies, listen,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            void Stop(PosixSignalContext signal) { signal.Cancel = true; stop.Cancel(); }
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            var shown = parse.GetValue(runs)!.Select(r => DashboardStudy.Local(r.FullName)).ToList();
            string[] names = parse.GetValue(studies) ?? [];
            string? url = parse.GetValue(storage);
            if (url is null && names.Length > 0) throw new UserInputException("--study names a study on --storage; give --storage URL too");
            if (url is not null && names.Length == 0) throw new UserInputException("--storage needs the studies to show: --study NAME (`paretoprune studies list --storage URL` lists them)");
            if (shown.Count == 0 && names.Length == 0) throw new UserInputException("name the studies to show: run directories, and/or --storage URL --study NAME");
            // Exported models of shared studies are read out of their store once, into a folder of this dashboard's.
            string? scratch = names.Length > 0 ? Directory.CreateTempSubdirectory("paretoprune-dashboard-").FullName : null;
            try
            {
                if (url is not null)
                {
                    var server = StudyAddress.ParseStorage(url);
                    // A folder per study, numbered: two names that differ only in punctuation must not share one.
                    shown.AddRange(names.Select((n, i) => DashboardStudy.Shared(server, n,
                        Path.Combine(scratch!, $"{i}-{string.Concat(n.Select(c => char.IsLetterOrDigit(c) ? c : '_'))}"))));
                }
                return await Serve(context, shown, parse.GetValue(listen)!, stop.Token);
            }
            finally
            {
                if (scratch is not null) Directory.Delete(scratch, recursive: true);
            }
        });
        return command;
    }

    static async Task<int> Serve(CliContext context, IReadOnlyList<DashboardStudy> studies, string listen, CancellationToken stop)
    {
        // A taken port surfaces as Kestrel's IOException: exit 2 with its message, as for the agent.
        await using var server = new DashboardServer(studies, ListenAddress.Parse(listen));
        await server.StartAsync(stop);
        context.Console.MarkupLine($"dashboard: [bold]{server.Address}[/] (Ctrl-C stops it)");
        try { await Task.Delay(Timeout.Infinite, stop); }
        catch (OperationCanceledException) { }
        return ExitCodes.Success;
    }
}
