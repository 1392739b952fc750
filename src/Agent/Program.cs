using System.CommandLine;
using ParetoPrune.Devices.Agent;
using ParetoPrune.Devices.Energy;

// paretoprune-agent: the device agent alone, for the Pi (see Agent.csproj). The same command as `paretoprune agent`,
// as the root of its own program (which gives it --help and --version).
var agent = AgentCommandLine.Create("paretoprune-agent", Console.Out, Console.Error, []);
var root = new RootCommand(agent.Description!) { Action = agent.Action };
foreach (var option in agent.Options) root.Add(option);
try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException or EnergyUnavailableException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 2;
}
