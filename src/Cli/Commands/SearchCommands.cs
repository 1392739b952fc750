using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Training;
using ParetoPrune.Optimizer.Reporting;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune search</c> (the product), <c>demo</c> (the embedded default), <c>report</c>, <c>export</c> and
/// <c>studies list</c>.
/// </summary>
static class SearchCommands
{
    sealed record Options(
        Option<FileInfo?> Model, Option<string> Data, Option<string> Objectives, Option<string[]> Constraints, Option<string> Device,
        Option<string?> LatencyDevice, Option<FileInfo?> TokenFile, Option<string?> Meter, Option<int> Trials, Option<string> Sampler,
        Option<int> Seed, Option<int> Workers, Option<string> Criterion, Option<double> MinKeep, Option<int> RoundTo, Option<bool> Tie,
        Option<int> Recalibration, Option<int> ScreeningSteps, Option<int> Promote, Option<int> PromotionSteps, Option<int> Final, Option<int> FinalEpochs,
        Option<int?> FinalSteps, Option<bool> Distill, Option<double> LearningRate, Option<int> BatchSize, Option<double> Validation,
        Option<int?> ValidationLimit, Option<double> MeasureBudget, Option<int?> Threads, Option<DirectoryInfo> Out, Option<bool> Resume,
        Option<FileInfo?> Config, Option<string?> Classes, Option<int> SpecialisationEpochs, Option<double?> RetryWindow, Option<bool> Json,
        Option<string?> Storage, Option<string?> Study, Option<int?> Parallel, Option<bool> PerBoard, Option<bool> Quantize, Option<bool> UniformBaseline, Option<double> BoundFocus,
        Argument<FileInfo?> ModelArgument)
    {
        public IEnumerable<Option> All => [Model, Data, Objectives, Constraints, Device, LatencyDevice, TokenFile, Meter, Trials, Sampler, Seed, Workers,
            Criterion, MinKeep, RoundTo, Tie, Recalibration, ScreeningSteps, Promote, PromotionSteps, Final, FinalEpochs, FinalSteps, Distill, LearningRate,
            BatchSize, Validation, ValidationLimit, MeasureBudget, Threads, Out, Resume, Config, Classes, SpecialisationEpochs, RetryWindow, Json,
            Storage, Study, Parallel, PerBoard, Quantize, UniformBaseline, BoundFocus];
    }

    static Options CreateOptions()
    {
        var o = NewOptions();
        o.Device.CompletionSources.Add(DeviceSpec.Suggested);
        o.Sampler.CompletionSources.Add([.. Samplers.Names]);
        return o;
    }

    static Options NewOptions() => new(
        new("--model") { Description = "the model, where it is not given first (the name a --config file uses)" },
        new("--data", "-d") { Description = "fashion-mnist, fashion-mnist-sample or a dataset directory (IDX, CIFAR binary, image folders)", DefaultValueFactory = _ => "fashion-mnist" },
        new("--objectives") { Description = $"comma-separated, from: {ObjectiveCatalog.KnownNames}", DefaultValueFactory = _ => "accuracy,macs" },
        new("--constraint") { Description = "a bound, repeatable: \"accuracy>=baseline-0.01\", \"macs<=0.5*baseline\", \"energy<=2 mJ\"", AllowMultipleArgumentsPerToken = false },
        new("--device") { Description = "where latency and energy come from: " + DeviceSpec.Help, DefaultValueFactory = _ => "pi4-estimate" },
        new("--latency-device") { Description = "measure latency elsewhere than --device (e.g. local, while energy is estimated for the Pi)" },
        new("--token-file") { Description = "bearer token of the device agent, with an http:// device" },
        new("--meter") { Description = $"energy meter for a local device: {string.Join(", ", Devices.Meters.MeterSpec.AcceptedForms)}" },
        new("--trials", "-n") { Description = "configurations to screen", DefaultValueFactory = _ => 40 },
        new("--sampler")
        {
            Description = "bo (Bayesian optimisation), random, uniform, nsga2, or greedy (NetAdapt-style: one group shrunk at a time down to " +
                          "the cost bound, keeping the most accurate; its walk takes trials ÷ search dimensions steps, so give it a few times " +
                          "as many trials as dimensions)",
            DefaultValueFactory = _ => "bo",
        },
        new("--seed") { Description = "seed of the sampler and the validation split", DefaultValueFactory = _ => 0 },
        new("--workers") { Description = "candidates evaluated in parallel (cores are shared between them)", DefaultValueFactory = _ => 1 },
        new("--criterion") { Description = "which channels survive: l1, l2, fpgm, bn, random, taylor, apoz, mean-act, lrp, lrp-zplus", DefaultValueFactory = _ => "l1" },
        new("--min-keep") { Description = "smallest kept fraction of any group", DefaultValueFactory = _ => 0.1 },
        new("--round-to") { Description = "round kept counts to this multiple", DefaultValueFactory = _ => 1 },
        new("--tie-groups") { Description = "one dimension per channel width (groups of equal size cut alike): fewer dimensions for deep networks" },
        new("--recalibration-batches") { Description = "BN recalibration batches of a screened candidate", DefaultValueFactory = _ => Defaults.RecalibrationBatches },
        new("--screening-steps") { Description = "fine-tuning steps of every screened candidate after recalibration (0: recalibration only, which ranks deep cuts near chance)", DefaultValueFactory = _ => Defaults.ScreeningSteps },
        new("--promote") { Description = "screened candidates fine-tuned briefly, chosen to cover the most hypervolume (0: none)", DefaultValueFactory = _ => Defaults.PromoteCount },
        new("--promotion-steps") { Description = "fine-tuning steps of a promoted candidate", DefaultValueFactory = _ => Defaults.PromotionSteps },
        new("--final") { Description = "promoted candidates fine-tuned with the final budget and exported, spread across the cost range", DefaultValueFactory = _ => Defaults.FinalCount },
        new("--final-epochs") { Description = "epochs of the final fine-tuning", DefaultValueFactory = _ => Defaults.FinalEpochs },
        new("--final-max-steps-per-epoch", "--final-steps") { Description = "at most this many steps per final epoch (a time budget)" },
        new("--distill") { Description = "distil from the unpruned model during the final fine-tuning" },
        new("--lr") { Description = "peak learning rate of fine-tuning", DefaultValueFactory = _ => Defaults.LearningRate },
        new("--batch-size") { Description = "images per batch (recalibration and fine-tuning)", DefaultValueFactory = _ => Defaults.BatchSize },
        new("--validation") { Description = "fraction of the training set held out, stratified, to rank candidates", DefaultValueFactory = _ => 0.1 },
        new("--validation-limit") { Description = "rank on at most this many validation images (scoring is much of a screening trial)" },
        new("--measure-budget") { Description = "seconds of timed runs per candidate on a measuring device", DefaultValueFactory = _ => 2 },
        new("--threads") { Description = "training threads of each trial (default: cores divided among workers); fixed when the study is created, since it can change the results" },
        new("--out", "-o") { Description = "run directory (study.db, CSVs, plots, report.html, models/)" },
        new("--resume") { Description = "continue the study in --out from its stored settings (--trials may grow; --workers, --retry-window, --json may change)" },
        new("--config") { Description = "a JSON file with the same fields (e.g. {\"model\": \"base.onnx\", \"trials\": 40, \"constraint\": [\"macs<=0.5*baseline\"]}); the command line wins" },
        new("--classes") { Description = "task specialisation: class indices or names, comma-separated (e.g. 0,2,5 or trouser,bag); the model is cut to them and fine-tuned first" },
        new("--specialisation-epochs") { Description = "epochs of fine-tuning of the specialised base model (with --classes)", DefaultValueFactory = _ => 1 },
        DeviceSpec.RetryWindowOption(),
        new("--json") { Description = "print a JSON summary for scripts" },
        new("--storage") { Description = "keep the study on a PostgreSQL server, postgresql://USER@HOST[:PORT]/DATABASE, and create it or join it there: " +
                                         "`paretoprune worker` processes on any machine then share its trials (default: study.db in --out, one process)" },
        new("--study") { Description = "the study's name on --storage (default: the name of --out)" },
        new("--parallel") { Description = "trials screened at once by all workers of the study together, fixed when it is created; its trials do " +
                                          "not depend on how many workers run it (default: --workers)" },
        new("--per-board") { Description = "with several device agents in --device: measure every candidate on every board (per-board figures, their mean " +
                                           "searched) rather than on the first free board" },
        new("--quantize") { Description = "also quantize every exported model to INT8 (static, QDQ, calibrated on 256 training images): each variant " +
                                          "is scored and measured, and the front holds float and INT8 models" },
        new("--uniform-baseline")
        {
            Description = "carry uniform pruning at the cost bound (the same fraction kept in every group) through every stage beside the " +
                          "search's picks, fine-tuned alike: the report shows the margin the search gained over it, and the answer is never " +
                          "a model it beats on validation. One more final fine-tuning; needs a cost bound (--uniform-baseline false: off)",
            DefaultValueFactory = _ => SearchDefaults.UniformBaseline,
        },
        new("--bound-focus")
        {
            Description = "with a cost bound: the share (0–1) of the Bayesian optimiser's proposals placed on the budget surface, where the " +
                          "model you deploy lies, rather than spread along the cheaper part of the front",
            DefaultValueFactory = _ => SearchDefaults.BoundFocus,
        },
        ModelInput.Argument("the trained base model (ONNX; N×C×H×W pixels in [0, 1] in, logits out)"));

    /// <summary>The library's defaults are the command's: one place decides them.</summary>
    static readonly FidelityOptions Defaults = new();
    static readonly PruningSearchOptions SearchDefaults = new() { OutputDirectory = "." };

    public static Command Search(CliContext context)
    {
        var o = CreateOptions();
        var command = new Command("search", "Search per-layer filter counts: screen candidates, fine-tune the best, export the Pareto front as ONNX models.");
        command.Add(o.ModelArgument);
        foreach (var option in o.All) command.Add(option);
        command.SetAction((parse, _) =>
        {
            if (parse.GetResult(o.ModelArgument) is { Tokens: [var positional] })
            {
                // The model given first, as in every command: from here on it is --model, which the study stores and resume compares.
                if (parse.GetValue(o.Model) is { } named && named.FullName != parse.GetValue(o.ModelArgument)!.FullName)
                    throw new UserInputException($"two models given: {positional.Value} and --model {named}; give one");
                var args = parse.Tokens.Where(t => !ReferenceEquals(t, positional) && t.Value != "--verbose").Select(t => t.Value).ToList();
                if (parse.GetValue(o.Model) is null) args.AddRange(["--model", positional.Value]);
                (parse, o) = ParseSearch(args) ?? throw new UserInputException("the search command line does not parse without its model");
            }
            if (parse.GetValue(o.Resume) && parse.GetValue(o.Storage) is { } url)
            {
                // A shared study continues from its own settings on the server, as a worker joins it, and this process may
                // propose trials up to the budget (a larger --trials grows it) as the search that created it did.
                string name = parse.GetValue(o.Study) ?? throw new UserInputException("--resume --storage needs the study's name: --study NAME");
                int? budget = parse.GetResult(o.Trials) is { Implicit: false } ? parse.GetValue(o.Trials) : null;
                string? data = parse.GetResult(o.Data) is { Implicit: false } ? parse.GetValue(o.Data) : null; // this machine's copy, if given
                return FromServer(context, url, name, (parse.GetValue(o.Out) ?? new DirectoryInfo(name)).FullName, data,
                                  parse.GetValue(o.Workers), budget, parse.GetValue(o.Json), joinOnly: false);
            }
            var output = parse.GetValue(o.Out) ?? throw new UserInputException("--out is required (or give it in --config)");
            if (parse.GetValue(o.Resume)) (parse, o) = FromStudy(parse, o, output.FullName);
            var model = parse.GetValue(o.Model) ?? throw new UserInputException("give the model: paretoprune search MODEL … (or \"model\" in --config)");
            return RunSearchAsync(context, parse, o, model.FullName, output.FullName);
        });
        return command;
    }

    /// <summary>Options that say how a search runs, not what it finds: a resumed search may give them anew.</summary>
    static readonly HashSet<string> RunOptions = new(StringComparer.Ordinal)
        { "--trials", "--workers", "--threads", "--retry-window", "--json", "--resume", "--out", "--config", "--storage", "--study" };

    /// <summary>The settings of a search command line (given or default) as its study stores them: option → values
    /// (paths made absolute, so that the study resumes from any directory; a flag that is on has no values).</summary>
    static Dictionary<string, string[]> Invocation(ParseResult parse, Options o) =>
        o.All.Where(option => !RunOptions.Contains(option.Name))
             .Select(option => (option.Name, Values: Values(parse, option)))
             .Where(s => s.Values is not null)
             .ToDictionary(s => s.Name, s => s.Values!, StringComparer.Ordinal);

    static string[]? Values(ParseResult parse, Option option) => parse.GetResult(option)?.GetValueOrDefault<object?>() switch
    {
        null or false => null,
        true => [],
        string[] { Length: 0 } => null,
        string[] items => items,
        FileSystemInfo file => [file.FullName],
        string text when option.Name == "--data" && (Directory.Exists(text) || File.Exists(text)) => [Path.GetFullPath(text)],
        string text => [text],
        IFormattable value => [value.ToString(null, CultureInfo.InvariantCulture)],
        var value => [value.ToString()!],
    };

    /// <summary>
    /// <c>search --resume --out RUN</c>: the settings the study was started with, and from this command line only
    /// <c>--trials</c> and how to run (<see cref="RunOptions"/>). Any other option given must repeat the study's value;
    /// a different one is refused with what differs. A study that stored no settings (from before they were stored)
    /// keeps the command line as it is, checked against the study's definition.
    /// </summary>
    static (ParseResult, Options) FromStudy(ParseResult parse, Options o, string outputDirectory)
    {
        string path = Path.Combine(outputDirectory, PruningSearch.StudyFile);
        if (!File.Exists(path)) throw new UserInputException($"--resume: there is no study in {outputDirectory} to continue (leave out --resume to start one)");
        IReadOnlyDictionary<string, string[]>? stored;
        int budget;
        using (var store = StudyStore.Open(path))
        {
            stored = store.Invocation;
            budget = store.Definition.Trials;
        }
        if (stored is null) return (parse, o);

        static string Show(string[]? values) => values is null ? "(not given)" : values.Length == 0 ? "(on)" : string.Join(" ", values);
        var changed = o.All.Where(option => !RunOptions.Contains(option.Name) && parse.GetResult(option) is { Implicit: false })
            .Select(option => (option.Name, Was: stored.GetValueOrDefault(option.Name), Now: Values(parse, option)))
            .Where(c => Show(c.Was) != Show(c.Now))
            .Select(c => $"{c.Name} was {Show(c.Was)}, now {Show(c.Now)}").ToList();
        if (changed.Count > 0)
            throw new UserInputException($"cannot resume {outputDirectory} with other settings: {string.Join("; ", changed)}. Only --trials, --workers, " +
                                         $"--retry-window and --json may change; the rest comes from the study: {ResumeCommand(outputDirectory)}");

        var args = CommandLine(stored);
        int trials = parse.GetResult(o.Trials) is { Implicit: false } ? parse.GetValue(o.Trials) : budget;
        args.AddRange(["--trials", trials.ToString(CultureInfo.InvariantCulture), "--out", outputDirectory, "--resume"]);
        if (parse.GetResult(o.Workers) is { Implicit: false }) args.AddRange(["--workers", parse.GetValue(o.Workers).ToString(CultureInfo.InvariantCulture)]);
        if (parse.GetValue(o.Threads) is { } threads) args.AddRange(["--threads", threads.ToString(CultureInfo.InvariantCulture)]);
        if (parse.GetValue(o.RetryWindow) is { } window) args.AddRange(["--retry-window", window.ToString(CultureInfo.InvariantCulture)]);
        if (parse.GetValue(o.Json)) args.Add("--json");

        return ParseSearch(args)
               ?? throw new UserInputException($"the settings stored in {path} no longer parse; resume with the whole original command line");
    }

    /// <summary>The search command line of stored settings (<see cref="Invocation"/>): a flag without values, an option once per value.</summary>
    static List<string> CommandLine(IReadOnlyDictionary<string, string[]> settings)
    {
        var args = new List<string> { "search" };
        foreach (var (name, values) in settings)
            if (values.Length == 0) args.Add(name);
            else foreach (string value in values) args.AddRange([name, value]);
        return args;
    }

    /// <summary>A search command line built here (the demo's, a resumed study's), parsed with options of its own; null when it does not parse.</summary>
    static (ParseResult, Options)? ParseSearch(IReadOnlyList<string> args)
    {
        var o = CreateOptions();
        var search = new Command("search");
        foreach (var option in o.All) search.Add(option);
        var parse = new RootCommand { search }.Parse(args);
        return parse.Errors.Count == 0 ? (parse, o) : null;
    }

    public static Command Demo(CliContext context)
    {
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "run directory (replaced if it holds an earlier demo)", DefaultValueFactory = _ => new DirectoryInfo("demo-run") };
        var trials = new Option<int>("--trials", "-n") { Description = "configurations to screen", DefaultValueFactory = _ => 30 };
        var json = new Option<bool>("--json") { Description = "print a JSON summary for scripts" };
        var command = new Command("demo",
            "The embedded default: search the shipped SimpleCnn on the embedded Fashion-MNIST sample for accuracy, MACs, Raspberry Pi 4B energy " +
            "(estimated, labelled so) and latency on this machine; writes plots and report.html. A few minutes on 2 cores.")
        { output, trials, json };
        command.SetAction(async (parse, _) =>
        {
            var directory = parse.GetValue(output)!;
            if (File.Exists(Path.Combine(directory.FullName, PruningSearch.StudyFile)))
            {
                // On stderr: with --json, stdout is the JSON summary alone.
                context.Error.WriteLine($"replacing the earlier demo in {directory.FullName}");
                directory.Delete(recursive: true);
            }
            Directory.CreateDirectory(directory.FullName);
            string modelPath = Path.Combine(directory.FullName, "simplecnn-fashion-mnist.onnx");
            await using (var resource = typeof(SearchCommands).Assembly.GetManifestResourceStream("simplecnn-fashion-mnist.onnx")
                         ?? throw new InvalidOperationException("the shipped model is not embedded in this build"))
            await using (var file = File.Create(modelPath))
                await resource.CopyToAsync(file);

            // The demo is a search command line with fixed values: one code path for both.
            string[] args =
            [
                "search", "--model", modelPath, "--data", "fashion-mnist-sample", "--objectives", "accuracy,macs,energy,latency",
                "--constraint", "accuracy>=baseline-0.03", "--constraint", "macs<=0.6*baseline",
                "--device", "pi4-estimate", "--latency-device", "local", "--measure-budget", "0.5",
                "--trials", parse.GetValue(trials).ToString(CultureInfo.InvariantCulture), "--sampler", "bo",
                "--recalibration-batches", "10", "--screening-steps", "20", "--promote", "12", "--promotion-steps", "50",
                "--final", "8", "--final-epochs", "1", "--final-max-steps-per-epoch", "300",
                "--out", directory.FullName, .. parse.GetValue(json) ? new[] { "--json" } : [],
            ];
            var (inner, o) = ParseSearch(args) ?? throw new InvalidOperationException("the demo's own command line is invalid");
            return await RunSearchAsync(context, inner, o, modelPath, directory.FullName);
        });
        return command;
    }

    /// <summary>
    /// <c>search --config FILE</c>: the file's fields become options (<c>"trials": 40</c> → <c>--trials 40</c>, camelCase or
    /// kebab-case names, arrays repeat the option, <c>true</c> sets a flag). Options on the command line win.
    /// </summary>
    public static string[] ExpandConfig(string[] args)
    {
        if (args.Length == 0 || args[0] != "search") return args;
        int at = Array.IndexOf(args, "--config");
        if (at < 0 || at + 1 >= args.Length) return args;
        string path = args[at + 1];
        if (!File.Exists(path)) throw new FileNotFoundException($"--config: no file {path}", path);
        var known = CreateOptions().All.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement; }
        catch (JsonException e) { throw new FormatException($"--config {path} is not valid JSON: {e.Message}"); }
        if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"--config {path} must hold a JSON object of option names and values");
        var expanded = new List<string>(args);
        foreach (var property in root.EnumerateObject())
        {
            string name = "--" + string.Concat(property.Name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "-" : "") + char.ToLowerInvariant(c) : c.ToString()));
            if (name == "--constraints") name = "--constraint";
            if (!known.Contains(name) || name == "--config")
                throw new FormatException($"--config {path}: unknown field '{property.Name}'; known: {string.Join(", ", known.Where(k => k != "--config").Select(k => k[2..]))}");
            if (args.Contains(name)) continue;
            string Text(JsonElement e) => e.ValueKind switch
            {
                JsonValueKind.String => e.GetString()!,
                JsonValueKind.Number => e.GetRawText(),
                _ => throw new FormatException($"--config {path}: field '{property.Name}' must be a string, number, boolean or array of strings"),
            };
            switch (property.Value.ValueKind)
            {
                case JsonValueKind.True: expanded.Add(name); break;
                case JsonValueKind.False: break;
                case JsonValueKind.Array: foreach (var item in property.Value.EnumerateArray()) expanded.AddRange([name, Text(item)]); break;
                default: expanded.AddRange([name, Text(property.Value)]); break;
            }
        }
        return [.. expanded];
    }

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
        var command = new Command("worker", "Join a study on a PostgreSQL server (`search --storage`) and evaluate its trials with the other workers, on this machine or any other.")
        {
            storage, study, output, workers, data, json,
        };
        command.SetAction((parse, _) =>
        {
            string name = parse.GetValue(study)!;
            return FromServer(context, parse.GetValue(storage)!, name, (parse.GetValue(output) ?? new DirectoryInfo($"{name}-worker")).FullName,
                              parse.GetValue(data), parse.GetValue(workers), budget: null, parse.GetValue(json), joinOnly: true);
        });
        return command;
    }

    /// <summary>
    /// Runs the search of study <paramref name="name"/> on a server with the settings it stores (the first machine's
    /// command line), this machine's folder <paramref name="directory"/> for models and the report, and the base model from
    /// the study where this machine lacks it. A worker only joins (<paramref name="joinOnly"/>); <c>search --resume</c> may
    /// also propose trials, up to <paramref name="budget"/> (default: the study's).
    /// </summary>
    static Task<int> FromServer(CliContext context, string url, string name, string directory, string? data, int workers, int? budget, bool json, bool joinOnly)
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
        var (inner, o) = ParseSearch(args) ?? throw new UserInputException($"the settings stored with study '{name}' no longer parse; join it with the whole `search` command line");
        context.Console.MarkupLine($"[grey]{(joinOnly ? "joining" : "continuing")} study '{Markup.Escape(name)}' at {Markup.Escape(server.Location)}[/]");
        return RunSearchAsync(context, inner, o, modelPath, directory, joinOnly);
    }

    static string Sha256(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));


    static async Task<int> RunSearchAsync(CliContext cli, ParseResult parse, Options o, string modelPath, string outputDirectory, bool joinOnly = false)
    {
        bool json = parse.GetValue(o.Json);
        var context = cli.ForProgress(json);
        var objectives = parse.GetValue(o.Objectives)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(ObjectiveCatalog.Parse).ToList();
        if (objectives.GroupBy(k => k).FirstOrDefault(g => g.Count() > 1) is { } repeated)
            throw new UserInputException($"--objectives lists {repeated.Key.Name()} {repeated.Count()} times; name each objective once");
        var constraints = ConstraintSet.Parse(parse.GetValue(o.Constraints) ?? []);
        var model = OnnxModel.Load(modelPath);
        InputChecks.FiniteWeights(model, modelPath);
        double fraction = parse.GetValue(o.Validation);
        if (fraction is <= 0 or >= 1) throw new UserInputException($"--validation must be in (0, 1), got {fraction}");
        var searchData = SearchData.For(model, TrainingRunner.LoadData(parse.GetValue(o.Data)!, ModelInterface.Read(model)), fraction,
                                        parse.GetValue(o.Seed), parse.GetValue(o.ValidationLimit));
        TrainingRunner.CheckFits(model, searchData.Train);

        bool needsLatency = objectives.Contains(ObjectiveKind.Latency) || constraints.Objectives.Contains(ObjectiveKind.Latency);
        bool needsEnergy = objectives.Contains(ObjectiveKind.Energy) || constraints.Objectives.Contains(ObjectiveKind.Energy);
        double? retryWindow = parse.GetValue(o.RetryWindow);
        DeviceSpec.CheckRetryWindow(retryWindow, parse.GetValue(o.Device), parse.GetValue(o.LatencyDevice));
        using var device = await DeviceSpec.OpenAsync(parse.GetValue(o.Device)!, parse.GetValue(o.Meter), parse.GetValue(o.TokenFile), CancellationToken.None, retryWindow,
                                                      parse.GetValue(o.PerBoard));
        using var latencyDevice = parse.GetValue(o.LatencyDevice) is { } latencySpec
            ? await DeviceSpec.OpenAsync(latencySpec, null, parse.GetValue(o.TokenFile), CancellationToken.None, retryWindow) : null;
        if (needsEnergy && device.Device is not null && !device.MeasuresEnergy)
            throw new UserInputException($"energy is asked for but {device.Device.Name} has no energy meter ({device.EnergyNote}); give --meter, or --device pi4-estimate to estimate it");
        var targets = DeviceSpec.Targets(device, latencyDevice, needsLatency, needsEnergy);

        var options = new PruningSearchOptions
        {
            OutputDirectory = outputDirectory,
            Objectives = objectives,
            Constraints = constraints,
            Sampler = Samplers.Parse(parse.GetValue(o.Sampler)!),
            Trials = parse.GetValue(o.Trials),
            Seed = parse.GetValue(o.Seed),
            Workers = parse.GetValue(o.Workers),
            Criterion = ChannelCriterion.Parse(parse.GetValue(o.Criterion)!),
            Space = new SearchSpaceOptions { MinKeepFraction = parse.GetValue(o.MinKeep), RoundTo = parse.GetValue(o.RoundTo), TieEqualSizedGroups = parse.GetValue(o.Tie) },
            Fidelity = new FidelityOptions
            {
                RecalibrationBatches = parse.GetValue(o.Recalibration), ScreeningSteps = parse.GetValue(o.ScreeningSteps), BatchSize = parse.GetValue(o.BatchSize), PromoteCount = parse.GetValue(o.Promote),
                PromotionSteps = parse.GetValue(o.PromotionSteps), FinalCount = parse.GetValue(o.Final), FinalEpochs = parse.GetValue(o.FinalEpochs),
                FinalStepsPerEpoch = parse.GetValue(o.FinalSteps), Distill = parse.GetValue(o.Distill), LearningRate = parse.GetValue(o.LearningRate),
            },
            Devices = targets,
            Measurement = new MeasurementPlan { WarmupRuns = 5, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(parse.GetValue(o.MeasureBudget)) },
            Resume = parse.GetValue(o.Resume),
            Threads = parse.GetValue(o.Threads),
            Invocation = Invocation(parse, o),
            Classes = parse.GetValue(o.Classes) is { } list ? ClassSubset.Resolve(list.Split(','), searchData.Train.ClassNames) : null,
            SpecialisationEpochs = parse.GetValue(o.SpecialisationEpochs),
            Storage = parse.GetValue(o.Storage) is { } url ? StudyAddress.ParseStorage(url) : null,
            StudyName = parse.GetValue(o.Study),
            JoinOnly = joinOnly,
            Parallelism = parse.GetValue(o.Parallel),
            Quantize = parse.GetValue(o.Quantize) ? new QuantizationOptions() : null,
            UniformBaseline = parse.GetValue(o.UniformBaseline),
            BoundFocus = parse.GetValue(o.BoundFocus),
        };
        if (options.Storage is null && parse.GetValue(o.Study) is not null) throw new UserInputException("--study names a study on --storage; give --storage too");
        if (options.Storage is null && !options.Resume && File.Exists(Path.Combine(outputDirectory, PruningSearch.StudyFile)))
            throw new UserInputException($"{outputDirectory} already holds a study: add --resume to continue it, or choose another --out");

        var search = new PruningSearch(new MLContext(seed: options.Seed), options);
        context.Console.MarkupLine($"[grey]{Markup.Escape(searchData.Description)}; {searchData.Train.Count:N0} training and {searchData.Validation.Count:N0} validation images; " +
                                   $"{Markup.Escape(targets.Description)}[/]");
        if (searchData.Caveat is { } caveat) context.Console.MarkupLine($"[yellow]warning: {Markup.Escape(caveat)}[/]");

        // First Ctrl-C: finish the trials in flight and stop (resumable). Second: abandon them.
        using var interruption = new Interruption(context.Error, "stopping after the trials in flight (Ctrl-C again to abandon them)…");
        PruningSearchResult result;
        try
        {
            result = await RunWithProgress(context, search, modelPath, searchData, options.Trials, interruption.Stop, interruption.Abort);
        }
        catch (OperationCanceledException) when (interruption.Abort.IsCancellationRequested)
        {
            context.Error.WriteLine($"abandoned; the trials in flight will be re-run by: {ResumeCommand(outputDirectory, Shared(options))}");
            return Interruption.ExitCode;
        }
        int summarised = Summarise(cli, context, result, json, Shared(options));
        // Stopped by the first Ctrl-C: what finished is stored and summarised, and the exit code says it was stopped.
        return interruption.Stop.IsCancellationRequested && summarised == ExitCodes.Success ? Interruption.ExitCode : summarised;
    }

    static async Task<PruningSearchResult> RunWithProgress(CliContext context, PruningSearch search, string modelPath, SearchData data, int trials,
                                                           CancellationToken stop, CancellationToken abort)
    {
        static string Line(SearchProgress p) =>
            $"{p.Stage.ToString().ToLowerInvariant()} {p.Completed}/{p.Total}" + (p.Failed > 0 ? $" ({p.Failed} failed)" : "") +
            $" · front {p.FrontSize} · HV {p.Hypervolume:0.0000}" + (p.Remaining is { } r ? $" · ETA {r:mm\\:ss}" : "");

        if (!context.IsInteractive)
        {
            var lines = new InlineProgress<SearchProgress>(p => context.Console.MarkupLine($"{Markup.Escape(Line(p))} · {Markup.Escape(p.Message)}"));
            return await search.RunAsync(modelPath, data, lines, stop, abort);
        }
        PruningSearchResult? result = null;
        await context.Console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: trials);
                var progress = new InlineProgress<SearchProgress>(p =>
                {
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = p.Completed;
                    task.Description = Markup.Escape(Line(p));
                    if (p.Message.StartsWith("trial", StringComparison.Ordinal)) context.Console.MarkupLine($"[grey]{Markup.Escape(p.Message)}[/]");
                });
                result = await search.RunAsync(modelPath, data, progress, stop, abort);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    /// <summary>Why a finished search exported nothing, with the failures counted and the next step; null when it exported
    /// models or has not finished.</summary>
    internal static string? NothingExported(PruningSearchResult result)
    {
        if (result.Status != StudyStatus.Finished || result.Front.Count > 0) return null;
        var failed = result.Trials.Where(t => t.State == TrialState.Failed).Select(t => t.Error ?? "no reason recorded").ToList();
        // --final 0 asks for no exported model: only a search whose every trial failed produced nothing then.
        if (result.Definition.Fidelity.FinalCount == 0 && failed.Count < result.Trials.Count) return null;
        var stageErrors = result.Trials.Where(t => t.State != TrialState.Failed && t.Error is not null).Select(t => t.Error!).ToList();
        string line = "no model reached the final stage: " + FailureReasons.Summarise(failed, result.Trials.Count, "trials");
        if (stageErrors.Count > 0) line += $"; {FailureReasons.Summarise(stageErrors, stageErrors.Count + result.Trials.Count(t => t.At(SearchStage.Final) is not null), "fine-tunings")}";
        return line + FailureReasons.NextStep(Path.Combine(result.RunDirectory, "trials.csv"));
    }

    /// <summary>The study on a server that <paramref name="options"/> name (its name defaults to the run folder's), or null.</summary>
    static (StudyStorage Storage, string Name)? Shared(PruningSearchOptions options) =>
        options.Storage is { } storage ? (storage, options.StudyName ?? Path.GetFileName(Path.GetFullPath(options.OutputDirectory))) : null;

    /// <param name="shared">The study's server and name where it is not in the run directory: what resumes it.</param>
    static int Summarise(CliContext cli, CliContext context, PruningSearchResult result, bool json, (StudyStorage Storage, string Name)? shared)
    {
        if (NothingExported(result) is { } nothing)
        {
            int code = SummariseFront(cli, context, result, json, shared);
            context.Error.WriteLine(nothing);
            return code == ExitCodes.Success ? ExitCodes.NoResult : code;
        }
        return SummariseFront(cli, context, result, json, shared);
    }

    static int SummariseFront(CliContext cli, CliContext context, PruningSearchResult result, bool json, (StudyStorage Storage, string Name)? shared)
    {
        string report = Path.Combine(result.RunDirectory, "report.html");
        var plots = Directory.Exists(Path.Combine(result.RunDirectory, "plots"))
            ? Directory.GetFiles(Path.Combine(result.RunDirectory, "plots")).Order(StringComparer.Ordinal).ToArray() : [];
        if (json)
        {
            Json.Write(cli.Output, new
            {
                runDirectory = result.RunDirectory,
                status = result.Status.Name(),
                trials = result.Trials.Count,
                failed = result.Trials.Count(t => t.State == TrialState.Failed),
                hypervolume = result.HypervolumeTrace.LastOrDefault(),
                baseline = result.Baseline.Values,
                front = result.Front.Select(c => new { trial = c.Trial, int8 = c.Int8, kept = c.Kept, feasible = c.Feasible, values = c.Values, testAccuracy = c.TestAccuracy, model = c.ModelPath }),
                best = result.Best()?.Trial,
                bestInt8 = result.Best()?.Int8,
                recommendation = Recommendation.For(result) is { Model: { } chosen } r ? new
                {
                    trial = chosen.Trial, exportCommand = r.ExportCommand,
                    uniformBaseline = r.Uniform is { } u ? new
                    {
                        trial = u.Uniform.Trial, kept = u.Uniform.Kept, keptFraction = u.KeptFraction, validationAccuracy = u.Uniform.Value(ObjectiveKind.Accuracy),
                        testAccuracy = u.Uniform.TestAccuracy?.Value, validationMargin = u.ValidationMargin, testMargin = u.TestMargin, isAnswer = u.IsAnswer,
                    } : null,
                    figures = r.Savings.Concat(r.Device).Select(c => new
                    {
                        kind = c.Kind.Name(), on = c.Where, baseline = c.Baseline, model = c.Model, factor = c.Factor, unit = c.Kind.Info().Unit,
                        provenance = c.Provenance.Description,
                    }),
                } : null,
                fidelityCorrelations = result.FidelityCorrelations.Select(c => new
                {
                    from = c.From.ToString().ToLowerInvariant(), to = c.To.ToString().ToLowerInvariant(), pairs = c.Pairs, spearman = c.Spearman,
                }),
                kernels = TorchRuntime.Decision?.ToString(),
                kernelChecks = new { signatures = ConvKernels.CheckCost.Count, seconds = ConvKernels.CheckCost.Time.TotalSeconds, wrong = ConvKernels.WrongFound },
                nothingExported = NothingExported(result),
                report,
                plots,
            });
            return ExitCodes.Success;
        }
        var console = context.Console;
        var objectives = result.Definition.Objectives;
        if (result.Unfinished is { } unfinished && result.Front.Count > 0)
            console.MarkupLine($"[yellow]{Markup.Escape(unfinished)}: the front and the best model are provisional; continue with: " +
                               $"{Markup.Escape(ResumeCommand(result.RunDirectory, shared))}[/]");
        if (result.Front.Count == 0)
        {
            if (result.Status != StudyStatus.Finished) // a finished one says why on standard error (Summarise)
                console.MarkupLine($"[yellow]stopped before the final stage; continue with: {Markup.Escape(ResumeCommand(result.RunDirectory, shared))}[/]");
        }
        else
        {
            var table = new Table().Border(TableBorder.Rounded).Title("exported models (final front)").AddColumn("trial");
            foreach (var objective in objectives) table.AddColumn(new TableColumn(objective.Name()).RightAligned());
            table.AddColumn(new TableColumn("test acc.").RightAligned()).AddColumn("model");
            var best = result.Best();
            foreach (var c in result.Front)
            {
                var cells = new List<string> { (c == best ? "[green]★ " : "") + c.Label + (c == best ? "[/]" : "") + (c.Feasible ? "" : " [red](infeasible)[/]")
                                               + (c.Trial == result.UniformBaseline?.Trial && !c.Int8 ? " [grey](uniform)[/]" : "") };
                cells.AddRange(objectives.Select(o => o.Format(c.Value(o))));
                cells.Add(c.TestAccuracy is { } t ? ObjectiveKind.Accuracy.Format(t.Value) : "");
                cells.Add(Markup.Escape(Path.GetRelativePath(Environment.CurrentDirectory, c.ModelPath)));
                table.AddRow(cells.ToArray());
            }
            var baselineCells = new List<string> { "baseline" };
            baselineCells.AddRange(objectives.Select(o => o.Format(result.Baseline.Value(o))));
            baselineCells.AddRange(["", ""]);
            table.AddRow(baselineCells.ToArray());
            console.Write(table);
            foreach (var v in result.Baseline.Values.Where(v => objectives.Contains(v.Kind)))
                console.MarkupLine($"[grey]{Markup.Escape(v.Kind.Name())}: {Markup.Escape(v.Provenance.ToString())}[/]");
            if (best is not null)
            {
                console.MarkupLine($"best under the constraints{(result.Status == StudyStatus.Finished ? "" : " so far")}: trial {best.Label} → {Markup.Escape(best.ModelPath)}");
                var card = Recommendation.For(result);
                console.MarkupLine("  " + Markup.Escape(string.Join("; ", card.Savings.Concat(card.Device).Where(c => c.Kind != ObjectiveKind.Params)
                    .Select(c => $"{c.Kind.Info().Label}{(c.Where is { } w ? $" on {w}" : "")} {c.Kind.Format(c.Model)} ({Recommendation.Describe(c)}" +
                                 $"{(c.Provenance.Kind == ProvenanceKind.Estimated ? ", estimated" : "")})"))));
                if (card.Uniform is { } uniform) console.MarkupLine("  " + Markup.Escape(uniform.Describe()));
                else if (card.UniformAbsence is { } absence) console.MarkupLine($"  [grey]{Markup.Escape(absence)}[/]");
                console.MarkupLine($"  take it out with: {Markup.Escape(card.ExportCommand)}");
            }
            else console.MarkupLine("[yellow]no exported model meets every constraint[/]");
        }
        foreach (var c in result.FidelityCorrelations.Where(c => c.Spearman is not null))
            console.MarkupLine($"[grey]rank correlation {c.From.ToString().ToLowerInvariant()} → {c.To.ToString().ToLowerInvariant()}: " +
                               $"ρ = {c.Spearman:0.00} over {c.Pairs} trials[/]");
        if (TorchRuntime.Decision is { } kernels) console.MarkupLine($"[grey]kernels: {Markup.Escape(kernels.ToString())}[/]");
        if (ConvKernels.CheckCost is { Count: > 0 } checks)
            console.MarkupLine($"[grey]kernel checks: {checks.Count} convolution signatures checked against ATen in {checks.Time.TotalSeconds:0.0} s" +
                               (ConvKernels.WrongFound is > 0 and var wrong ? $"; {wrong} oneDNN kernels found wrong here for a signature, each avoided since" : "") + "[/]");
        console.MarkupLine($"report: {Markup.Escape(report)}");
        foreach (var plot in plots.Where(p => p.EndsWith(".png", StringComparison.Ordinal))) console.MarkupLine($"plot: {Markup.Escape(plot)}");
        return ExitCodes.Success;
    }

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

    /// <summary>The command that continues the study in <paramref name="directory"/>, or on a server where
    /// <paramref name="shared"/> names one, as the user can paste it here.</summary>
    static string ResumeCommand(string directory, (StudyStorage Storage, string Name)? shared = null)
    {
        if (shared is { } server) return $"paretoprune search --resume --storage {server.Storage.Location} --study {server.Name}";
        string relative = Path.GetRelativePath(Environment.CurrentDirectory, directory);
        string path = relative.StartsWith("..", StringComparison.Ordinal) ? Path.GetFullPath(directory) : relative; // below here: short; elsewhere: absolute
        return $"paretoprune search --resume --out {(path.Contains(' ') ? $"\"{path}\"" : path)}";
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
