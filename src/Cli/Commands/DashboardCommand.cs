using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ParetoPrune.Cli.Dashboard;
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
            string text = parse.GetValue(listen)!;
            int colon = text.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(text[(colon + 1)..], out int port) || port is < 0 or > 65535)
                throw new UserInputException($"--listen takes ADDRESS:PORT (e.g. 127.0.0.1:8650); got '{text}'");
            string host = text[..colon];
            var address = host == "localhost" ? IPAddress.Loopback : IPAddress.TryParse(host.Trim('[', ']'), out var ip) ? ip
                : throw new UserInputException($"--listen: '{host}' is not an IP address or localhost");

            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            void Stop(PosixSignalContext signal) { signal.Cancel = true; stop.Cancel(); }
            using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
            using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
            await using var server = new DashboardServer(parse.GetValue(runs)!.Select(r => r.FullName).ToList(), new IPEndPoint(address, port));
            try { await server.StartAsync(stop.Token); }
            catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse })
            {
                throw new UserInputException($"--listen {text}: the port is already in use; choose another (e.g. --listen 127.0.0.1:0 picks a free one)");
            }
            context.Console.MarkupLine($"dashboard: [bold]{server.Address}[/] (Ctrl-C stops it)");
            try { await Task.Delay(Timeout.Infinite, stop.Token); }
            catch (OperationCanceledException) { }
            return ExitCodes.Success;
        });
        return command;
    }
}
