using System.CommandLine;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune export</c>: copies the chosen (or a named) exported model out of a study.</summary>
static partial class SearchCommands
{
    public static Command Export(CliContext context)
    {
        var study = new StudyAddress();
        var trial = new Option<int?>("--trial") { Description = "the trial to export (default: the best under the study's constraints)" };
        var int8 = new Option<bool>("--int8") { Description = "the trial's INT8 variant (a study run with --quantize; default with no --trial: whichever variant is best)" };
        var output = new Option<FileInfo>("--out", "-o") { Description = "where to write the ONNX model", Required = true };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var command = new Command("export", "Copy an exported model of a search (fine-tuned, BN folded, normalisation inside) to a file.") { trial, int8, output, json };
        study.AddTo(command);
        command.SetAction(parse =>
        {
            var destination = parse.GetRequiredValue(output);
            InputChecks.WritableFile(destination, "--out");
            // A study on a server: its models are read out of the store into a scratch folder, and the one asked for copied.
            string? scratch = study.Server(parse) is null ? null : Directory.CreateTempSubdirectory("paretoprune-export-").FullName;
            try
            {
                return Export(context, study.Load(parse, scratch), parse.GetValue(trial), parse.GetValue(int8), destination, parse.GetValue(json));
            }
            finally
            {
                if (scratch is not null) Directory.Delete(scratch, recursive: true);
            }
        });
        return command;
    }

    static int Export(CliContext context, PruningSearchResult result, int? trial, bool int8, FileInfo destination, bool json)
    {
        var finals = result.Trials.Where(t => t.At(SearchStage.Final)?.ModelPath is not null).Select(t => t.Number).ToList();
        int number = trial ?? result.Best()?.Trial
            ?? throw new UserInputException("no exported model meets the study's constraints; name one with --trial " +
                                            (finals.Count > 0 ? $"({string.Join(", ", finals)})" : "(none was exported yet)"));
        bool quantized = int8 || (trial is null && result.Best()?.Int8 == true);
        var found = result.Trials.FirstOrDefault(t => t.Number == number) ?? throw new UserInputException($"the study has no trial {number}");
        var final = found.At(SearchStage.Final);
        if (final?.ModelPath is null)
            throw new UserInputException($"trial {number} was not fine-tuned to the final stage, so it has no model to export; exported trials: " +
                                         (finals.Count > 0 ? string.Join(", ", finals) : "none yet"));
        if (quantized)
            final = final.Int8 ?? throw new UserInputException($"trial {number} has no INT8 variant: the study was not run with --quantize");
        if (result.Unfinished is { } unfinished)
            context.Error.WriteLine($"warning: {unfinished}; trial {number} is the best so far, not the search's answer");
        string source = Path.Combine(result.RunDirectory, final.ModelPath!);
        if (!File.Exists(source)) throw new UserInputException($"trial {number}'s model {final.ModelPath} is neither in {result.RunDirectory} nor in the study");
        Optimizer.Reporting.AtomicFile.Copy(source, destination.FullName); // a model being loaded from there is never seen half written
        if (json)
        {
            Json.Write(context.Output, new
            {
                trial = number, int8 = quantized, model = destination.FullName, values = final.Values, testAccuracy = final.TestAccuracy,
                provisional = result.Unfinished is not null,
            });
            return ExitCodes.Success;
        }
        context.Console.MarkupLine($"trial {number}{(quantized ? " (INT8)" : "")} → {Markup.Escape(destination.FullName)}: " +
            string.Join(", ", final.Values.Select(v => $"{v.Kind.Name()} {v.Kind.Format(v.Value)}")) +
            (final.TestAccuracy is { } t ? $", test accuracy {ObjectiveKind.Accuracy.Format(t.Value)}" : ""));
        return ExitCodes.Success;
    }
}
