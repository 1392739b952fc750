using System.CommandLine;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune report</c>: rewrites a study's CSVs, plots and report.html and summarises it.</summary>
static partial class SearchCommands
{
    public static Command Report(CliContext context)
    {
        var study = new StudyAddress();
        var output = new Option<DirectoryInfo?>("--out", "-o") { Description = "for a study on --storage: the folder for its models, CSVs, plots and report.html (default: ./STUDY)" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary for scripts" };
        var command = new Command("report", "Rewrite a search's CSVs, plots and report.html from its study, and summarise it.") { output, json };
        study.AddTo(command);
        command.SetAction(parse =>
        {
            if (study.Directory(parse) is not null && parse.GetValue(output) is not null)
                throw new UserInputException("--out is for a study on --storage; a run directory's report is written into it");
            string? folder = study.Server(parse) is { } server ? (parse.GetValue(output) ?? new DirectoryInfo(server.Name)).FullName : null;
            var result = study.Load(parse, folder);
            Optimizer.Reporting.SearchReport.Write(result);
            return Summarise(context, context.ForProgress(parse.GetValue(json)), result, parse.GetValue(json), study.Server(parse));
        });
        return command;
    }
}
