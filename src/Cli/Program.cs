using ParetoPrune.Cli;
using ParetoPrune.Optimizer.Training;

// The kernel self-check runs capped oneDNN modes in fresh processes of this program (see KernelCheckCommand).
string self = Environment.ProcessPath!;
KernelSelection.CheckHost = Path.GetFileNameWithoutExtension(self) == "dotnet"
    ? [self, typeof(CliApp).Assembly.Location, "kernel-check"]
    : [self, "kernel-check"];
return await CliApp.RunAsync(args, Console.Out, Console.Error);
