using System.CommandLine;
using ParetoPrune.Devices;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Meters;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune agent --listen ADDR:PORT --token-file F --meter SPEC</c>: the measurement service that runs on the Pi.</summary>
static class AgentCommand
{
    public static Command Create(CliContext context)
    {
        var listen = new Option<string>("--listen") { Description = "address and port, e.g. 0.0.0.0:8642", DefaultValueFactory = _ => "127.0.0.1:8642" };
        var tokenFile = new Option<FileInfo>("--token-file") { Description = $"file holding the bearer token (at least {AgentToken.MinimumLength} characters)", Required = true };
        var meter = new Option<string>("--meter") { Description = $"energy meter: {string.Join(", ", MeterSpec.AcceptedForms)}", DefaultValueFactory = _ => "none" };
        var maxUpload = new Option<int>("--max-upload-mb") { Description = "largest model accepted", DefaultValueFactory = _ => 256 };
        var queue = new Option<int>("--queue") { Description = "measurements that may wait while one runs", DefaultValueFactory = _ => 4 };
        var command = new Command("agent", "Serve measurements of uploaded ONNX models over HTTP (run this on the device, e.g. a Raspberry Pi).")
        {
            listen, tokenFile, meter, maxUpload, queue,
        };
        command.SetAction(async (parse, cancellation) =>
        {
            string token = AgentToken.Read(parse.GetRequiredValue(tokenFile).FullName);
            var energy = MeterSpec.Parse(parse.GetValue(meter)!);
            var options = new AgentOptions(parse.GetValue(listen)!, token, new HostDevice(energy))
            {
                Meter = energy, MaxUploadBytes = parse.GetValue(maxUpload) * 1024L * 1024, QueueLimit = parse.GetValue(queue),
            };
            await using var agent = new DeviceAgent(options);
            await agent.StartAsync(cancellation);
            context.Console.MarkupLine($"agent listening on [bold]{agent.Address}[/] (meter: {energy?.Name ?? "none"}); Ctrl-C stops it");
            try { await Task.Delay(Timeout.Infinite, cancellation); }
            catch (OperationCanceledException) { }
            await agent.StopAsync(CancellationToken.None);
            energy?.Dispose();
            return ExitCodes.Success;
        });
        return command;
    }
}
