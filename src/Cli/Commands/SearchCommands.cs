using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Comparison;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune search</c>, the product: its options, config files, resume and the run itself. The other
/// commands on a study each have their file (demo, worker, report, export, studies list; the summary they share:
/// SearchSummary.cs).</summary>
static partial class SearchCommands
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
        Option<bool> SensitivityPrior, Argument<FileInfo?> ModelArgument)
    {
        public IEnumerable<Option> All => [Model, Data, Objectives, Constraints, Device, LatencyDevice, TokenFile, Meter, Trials, Sampler, Seed, Workers,
            Criterion, MinKeep, RoundTo, Tie, Recalibration, ScreeningSteps, Promote, PromotionSteps, Final, FinalEpochs, FinalSteps, Distill, LearningRate,
            BatchSize, Validation, ValidationLimit, MeasureBudget, Threads, Out, Resume, Config, Classes, SpecialisationEpochs, RetryWindow, Json,
            Storage, Study, Parallel, PerBoard, Quantize, UniformBaseline, BoundFocus, SensitivityPrior];
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
        new("--sensitivity-prior")
        {
            Description = "with a cost bound: first cut each channel group alone to uniform pruning's count, fine-tune it as long as a screening " +
                          "and measure what it loses; the allocation those losses shape is a design point carried to the end, and the most " +
                          "accurate trials under the bound are fine-tuned (+0.2 points on VGG-11 under a parameter bound for 12 % more steps; " +
                          "bench/RESULTS.md)",
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
                                  parse.GetValue(o.Workers), budget, parse.GetValue(o.Json), joinOnly: false, RunTokens(parse, o.Threads, o.RetryWindow));
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
            SensitivityPrior = parse.GetValue(o.SensitivityPrior),
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
            result = await RunWithProgress(context, search, modelPath, searchData, interruption.Stop, interruption.Abort);
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

    static Task<PruningSearchResult> RunWithProgress(CliContext context, PruningSearch search, string modelPath, SearchData data,
                                                     CancellationToken stop, CancellationToken abort) =>
        ProgressDisplay.RunAsync<SearchProgress, PruningSearchResult>(context, progress => search.RunAsync(modelPath, data, progress, stop, abort),
            p => new(p.Completed, p.Total,
                     $"{p.Stage.ToString().ToLowerInvariant()} {p.Completed}/{p.Total}" + (p.Failed > 0 ? $" ({p.Failed} failed)" : "") +
                     $" · front {p.FrontSize} · HV {p.Hypervolume:0.0000}" + (p.Remaining is { } r ? $" · ETA {r:mm\\:ss}" : ""),
                     p.Message, Keep: p.Message.StartsWith("trial", StringComparison.Ordinal)));
}
