using System.CommandLine;
using ParetoPrune.Devices.Agent;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune agent …</c>: the device agent's own command line (<see cref="AgentCommandLine"/>), also the lean
/// <c>paretoprune-agent</c> that runs on the Pi.</summary>
static class AgentCommand
{
    public static Command Create(CliContext context) => AgentCommandLine.Create("agent", context.Output, context.Error, ["agent"]);
}
