using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune studies list</c>: the studies under a folder or on a server, with their state and progress.</summary>
static partial class SearchCommands
{
    public static Command Studies(CliContext context)
    {
        var root = new Option<DirectoryInfo>("--root") { Description = "where to look for run directories (three levels deep)", DefaultValueFactory = _ => new DirectoryInfo(".") };
        var storage = new Option<string?>("--storage") { Description = "list the studies on a PostgreSQL server instead: postgresql://USER@HOST[:PORT]/DATABASE" };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var list = new Command("list", "List the studies: run directories with a study.db under a directory, or the studies on a server.") { root, storage, json };
        list.SetAction(parse =>
        {
            var rows = new List<(string Directory, StudyDefinition Definition, int Trials, int Failed, int Exported, StudyStatus Status, DateTimeOffset Created, string? Writer)>();
            var problems = new List<string>();
            string? url = parse.GetValue(storage);
            if (url is not null && parse.GetResult(root) is { Implicit: false })
                throw new UserInputException("--root looks for run directories on this machine, --storage lists a server's studies: give one");
            void Add(StudyStore store, string where)
            {
                var trials = store.Trials();
                rows.Add((where, store.Definition, trials.Count, trials.Count(t => t.State == TrialState.Failed),
                          trials.Count(t => t.At(SearchStage.Final) is not null), store.LiveStatus, store.Created, store.Writer));
            }
            var server = url is null ? null : StudyAddress.ParseStorage(url);
            if (server is not null)
            {
                foreach (string name in StudyStore.Names(server))
                {
                    try
                    {
                        using var store = StudyStore.Join(server, name);
                        Add(store, name);
                    }
                    catch (Exception e) when (e is InvalidDataException or JsonException or StudyNotFoundException)
                    {
                        problems.Add($"{name}: {e.Message}");
                    }
                }
            }
            else
                foreach (var file in FindStudies(parse.GetValue(root)!.FullName, depth: 3))
                {
                    try
                    {
                        using var store = StudyStore.Open(file);
                        Add(store, Path.GetDirectoryName(file)!);
                    }
                    catch (Exception e) when (e is InvalidDataException or Microsoft.Data.Sqlite.SqliteException or JsonException)
                    {
                        problems.Add($"{file}: {e.Message}");
                    }
                }
            string Resume(string where) => server is null ? ResumeCommand(where) : ResumeCommand(where, (server, where));
            string Shown(string where) => url is null ? Path.GetRelativePath(Environment.CurrentDirectory, where) : where;
            if (parse.GetValue(json))
            {
                Json.Write(context.Output, rows.Select(r => new
                {
                    directory = url is null ? r.Directory : null, study = url is null ? null : r.Directory, storage = server?.Location,
                    sampler = r.Definition.Sampler, objectives = r.Definition.Objectives.Select(o => o.Name()),
                    constraints = r.Definition.Constraints, trials = r.Trials, budget = r.Definition.Trials, failed = r.Failed, exported = r.Exported,
                    status = r.Status.Name(), created = r.Created, writer = r.Status == StudyStatus.Running ? r.Writer : null, resume = r.Status is StudyStatus.Finished or StudyStatus.Running ? null : Resume(r.Directory),
                }));
                return ExitCodes.Success;
            }
            if (rows.Count == 0) context.Console.MarkupLine("no studies found");
            else
            {
                var table = new Table().Border(TableBorder.Rounded).AddColumns(url is null ? "run directory" : "study", "sampler", "objectives", "trials", "exported", "status", "created");
                foreach (var r in rows.OrderBy(r => r.Created))
                    table.AddRow(Markup.Escape(Shown(r.Directory)), r.Definition.Sampler,
                        string.Join(",", r.Definition.Objectives.Select(o => o.Name())), $"{r.Trials}/{r.Definition.Trials}" + (r.Failed > 0 ? $" ({r.Failed} failed)" : ""),
                        r.Exported.ToString(CultureInfo.InvariantCulture),
                        r.Status switch { StudyStatus.Stopped or StudyStatus.Killed => $"{r.Status.Name()} (incomplete)", StudyStatus.Running => $"running ({r.Writer})", var s => s.Name() },
                        r.Created.ToLocalTime().ToString("yyyy-MM-dd HH:mm", CultureInfo.InvariantCulture));
                context.Console.Write(table);
                foreach (var r in rows.Where(r => r.Status is not (StudyStatus.Finished or StudyStatus.Running)).OrderBy(r => r.Created))
                    context.Console.MarkupLine($"[grey]continue {Markup.Escape(Shown(r.Directory))}: {Markup.Escape(Resume(r.Directory))}[/]");
            }
            foreach (var p in problems) context.Error.WriteLine($"skipped {p}");
            return ExitCodes.Success;
        });
        return new Command("studies", "Studies (search runs) on this machine or on a PostgreSQL server.") { list };
    }

    static IEnumerable<string> FindStudies(string directory, int depth)
    {
        string candidate = Path.Combine(directory, PruningSearch.StudyFile);
        if (File.Exists(candidate)) yield return candidate;
        if (depth == 0) yield break;
        IEnumerable<string> children;
        try { children = Directory.EnumerateDirectories(directory); }
        catch (UnauthorizedAccessException) { yield break; }
        foreach (var child in children.Order(StringComparer.Ordinal))
            foreach (var found in FindStudies(child, depth - 1)) yield return found;
    }
}
