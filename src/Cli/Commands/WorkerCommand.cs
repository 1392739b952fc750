using System.CommandLine;
using System.Globalization;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune worker</c>, and joining or continuing a study on a server from its stored settings.</summary>
static partial class SearchCommands
{
    /// <summary>
    /// <c>paretoprune worker</c>: joins a study on a server with the settings it was created with (read from the study),
    /// and works on it until every stage is done. The base model comes from the study when this machine lacks the file.
    /// </summary>
    public static Command Worker(CliContext context)
    {
        var storage = new Option<string>("--storage") { Description = "the PostgreSQL server the study is on: postgresql://USER@HOST[:PORT]/DATABASE", Required = true };
        var study = new Option<string>("--study") { Description = "the study's name (as `search --study`, or the name of its --out)", Required = true };
        var output = new Option<DirectoryInfo?>("--out", "-o") { Description = "this machine's folder for models, plots and the report (default: ./STUDY-worker)" };
        var workers = new Option<int>("--workers") { Description = "candidates this process evaluates at once", DefaultValueFactory = _ => 1 };
        var data = new Option<string?>("--data", "-d") { Description = "where this machine has the study's dataset, if not where it was on the first machine" };
        var json = new Option<bool>("--json") { Description = "print a JSON summary for scripts" };
        var retryWindow = DeviceSpec.RetryWindowOption();
        var command = new Command("worker", "Join a study on a PostgreSQL server (`search --storage`) and evaluate its trials with the other workers, on this machine or any other.")
        {
            storage, study, output, workers, data, json, retryWindow,
        };
        command.SetAction((parse, _) =>
        {
            string name = parse.GetValue(study)!;
            return FromServer(context, parse.GetValue(storage)!, name, (parse.GetValue(output) ?? new DirectoryInfo($"{name}-worker")).FullName,
                              parse.GetValue(data), parse.GetValue(workers), budget: null, parse.GetValue(json), joinOnly: true,
                              RunTokens(parse, retryWindow));
        });
        return command;
    }

    /// <summary>The tokens of <paramref name="options"/> given explicitly on this command line, to pass on as they were.</summary>
    static IEnumerable<string> RunTokens(ParseResult parse, params Option[] options) =>
        options.Where(option => parse.GetResult(option) is { Implicit: false }).SelectMany(option => new[] { option.Name }.Concat(Values(parse, option) ?? []));

    /// <summary>
    /// Runs the search of study <paramref name="name"/> on a server with the settings it stores (the first machine's
    /// command line), this machine's folder <paramref name="directory"/> for models and the report, and the base model from
    /// the study where this machine lacks it. A worker only joins (<paramref name="joinOnly"/>); <c>search --resume</c> may
    /// also propose trials, up to <paramref name="budget"/> (default: the study's).
    /// </summary>
    /// <param name="run">How this process runs, as given on its command line (<c>--threads</c>, <c>--retry-window</c>): not the
    /// study's settings, so not stored with it.</param>
    static Task<int> FromServer(CliContext context, string url, string name, string directory, string? data, int workers, int? budget, bool json, bool joinOnly,
                                IEnumerable<string> run)
    {
        IReadOnlyDictionary<string, string[]> stored;
        StudyDefinition definition;
        byte[]? model;
        var server = StudyAddress.ParseStorage(url);
        using (var store = StudyStore.Join(server, name))
        {
            stored = store.Invocation ?? throw new UserInputException($"{store.Location} stores no search settings to join it with; run the whole `search` command line there instead");
            definition = store.Definition;
            model = store.Backend.GetArtifact(PruningSearch.BaseModelArtifact);
        }
        var settings = stored.ToDictionary(kv => kv.Key, kv => kv.Value);
        string? modelPath = settings.GetValueOrDefault("--model")?.FirstOrDefault();
        if (modelPath is null || !File.Exists(modelPath) || Sha256(modelPath) != definition.ModelSha256)
        {
            if (model is null) throw new UserInputException($"the study's model {modelPath} is not on this machine, and the study does not hold a copy");
            Directory.CreateDirectory(directory);
            modelPath = Path.Combine(directory, PruningSearch.BaseModelArtifact);
            File.WriteAllBytes(modelPath, model);
            settings["--model"] = [modelPath];
        }
        if (data is { } local) settings["--data"] = [Directory.Exists(local) || File.Exists(local) ? Path.GetFullPath(local) : local];

        var args = CommandLine(settings);
        args.AddRange(["--trials", (budget ?? definition.Trials).ToString(CultureInfo.InvariantCulture), "--out", directory, "--storage", url, "--study", name,
                       "--workers", workers.ToString(CultureInfo.InvariantCulture)]);
        if (!joinOnly) args.Add("--resume");
        if (json) args.Add("--json");
        args.AddRange(run);
        var (inner, o) = ParseSearch(args) ?? throw new UserInputException($"the settings stored with study '{name}' no longer parse; join it with the whole `search` command line");
        context.Console.MarkupLine($"[grey]{(joinOnly ? "joining" : "continuing")} study '{Markup.Escape(name)}' at {Markup.Escape(server.Location)}[/]");
        return RunSearchAsync(context, inner, o, modelPath, directory, joinOnly);
    }
}
