using System.CommandLine;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune kernel-check --mode M --threads N --models DIR --result FILE</c> (hidden): checks one capped oneDNN
/// mode in this fresh process, for <see cref="KernelSelection.CheckHost"/>. DIR holds <c>compared-*.onnx</c> (checked
/// for correctness) and <c>timed-*.onnx</c> (timed); FILE receives the checks as JSON.
/// </summary>
static class KernelCheckCommand
{
    public static Command Create(CliContext context)
    {
        var mode = new Option<string>("--mode") { Required = true, Description = "the capped mode" };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => Environment.ProcessorCount };
        var models = new Option<DirectoryInfo>("--models") { Required = true };
        var result = new Option<FileInfo>("--result") { Required = true };
        var command = new Command("kernel-check", "Check one capped oneDNN mode (run by the kernel self-check itself).")
        {
            mode, threads, models, result,
        };
        command.Hidden = true;
        command.SetAction(parse =>
        {
            var folder = parse.GetRequiredValue(models);
            IReadOnlyList<Objectives.Onnx.Proto.ModelProto> Load(string prefix) =>
                folder.GetFiles(prefix + "-*.onnx").OrderBy(f => f.Name, StringComparer.Ordinal).Select(f => OnnxModel.Load(f.FullName)).ToList();
            var checks = KernelSelection.CheckCapped(KernelModes.Parse(parse.GetRequiredValue(mode)), Load("compared"), Load("timed"), parse.GetValue(threads));
            File.WriteAllText(parse.GetRequiredValue(result).FullName, KernelSelection.WriteChecks(checks));
            return ExitCodes.Success;
        });
        return command;
    }
}
