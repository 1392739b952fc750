using System.CommandLine;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary>
/// <c>paretoprune prune MODEL --criterion l1 --amount 0.5 [--global] [--round-to 8] [--keep GROUP=COUNT …] --out PRUNED</c>,
/// or <c>--unstructured --amount 0.8</c>: one pruning, with before/after costs.
/// </summary>
static class PruneCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<FileInfo>("model") { Description = "ONNX model to prune" };
        var output = new Option<FileInfo>("--out", "-o") { Description = "where to write the pruned model", Required = true };
        var criterion = new Option<string>("--criterion")
        {
            Description = "channel importance: l1, l2, fpgm, bn, random (weights), or taylor, apoz, mean-act, lrp, lrp-zplus (need --data)",
            DefaultValueFactory = _ => "l1",
        };
        var data = new Option<string?>("--data", "-d") { Description = "dataset for data-driven criteria (training images only): fashion-mnist, fashion-mnist-sample or a directory" };
        var batches = new Option<int>("--importance-batches", "--batches") { Description = "batches of 64 images measured by data-driven criteria", DefaultValueFactory = _ => 8 };
        var amount = new Option<double?>("--amount", "-a") { Description = "fraction removed, in [0, 1): of the channels of each prunable group, or with --unstructured of the weights" };
        // Its own option, not an alias of --amount: a sparsity is a share of zeroed weights, so it means unstructured pruning.
        var sparsity = new Option<double?>("--sparsity") { Description = "fraction of the weights to zero, in [0, 1): unstructured pruning (the same as --unstructured --amount)" };
        var global = new Option<bool>("--global") { Description = "rank channels across all groups instead of removing the same fraction from each" };
        var roundTo = new Option<int>("--round-to") { Description = "round kept channel counts to a multiple (8 suits SIMD runtimes)", DefaultValueFactory = _ => 1 };
        var keep = new Option<string[]>("--keep") { Description = "GROUP=COUNT: keep COUNT channels of a group (name or gN); repeatable", AllowMultipleArgumentsPerToken = true };
        var unstructured = new Option<bool>("--unstructured") { Description = "zero the smallest weights instead of removing channels" };
        var perLayer = new Option<bool>("--per-layer") { Description = "with --unstructured: the same sparsity in every layer (default: one global threshold)" };
        var skipEnds = new Option<bool>("--skip-first-and-last") { Description = "with --unstructured: leave the first conv and the classifier dense" };
        var seed = new Option<int>("--seed") { Description = "seed for --criterion random", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts" };
        var overwrite = InputChecks.OverwriteOption();
        var command = new Command("prune", "Prune a model once: remove channels (structured) or zero weights (unstructured).")
        {
            model, output, criterion, data, batches, amount, sparsity, global, roundTo, keep, unstructured, perLayer, skipEnds, seed, json, overwrite,
        };
        command.SetAction(parse =>
        {
            var file = parse.GetRequiredValue(model);
            var outFile = parse.GetRequiredValue(output);
            InputChecks.WritableFile(outFile, "--out", file, parse.GetValue(overwrite));
            if (parse.GetValue(sparsity) is not null && parse.GetValue(amount) is not null)
                throw new UserInputException("--sparsity is the fraction of weights to zero and --amount the fraction removed: give one");
            if (parse.GetValue(sparsity) is not null && (parse.GetValue(keep) is { Length: > 0 } || parse.GetValue(global)))
                throw new UserInputException("--sparsity zeroes weights (unstructured pruning); --keep and --global remove channels: use --amount with them");
            var original = OnnxModel.Load(file.FullName);
            InputChecks.FiniteWeights(original, file.FullName);
            var before = ModelCost.Analyze(original);

            if (parse.GetValue(unstructured) || parse.GetValue(sparsity) is not null)
            {
                double s = parse.GetValue(sparsity) ?? parse.GetValue(amount)
                    ?? throw new UserInputException("--unstructured needs --amount, the fraction of weights to zero (e.g. --amount 0.8)");
                var (pruned, layers) = UnstructuredPruner.Prune(original, s, parse.GetValue(perLayer) ? SparsityScope.PerLayer : SparsityScope.Global,
                                                                 parse.GetValue(skipEnds));
                OnnxModel.Save(pruned, outFile.FullName);
                var after = ModelCost.Analyze(pruned);
                Report(context, parse.GetValue(json), before, original, after, pruned, outFile,
                       layers.Select(l => new { layer = l.Layer, elements = l.Elements, zeros = l.Zeros, sparsity = l.Sparsity }),
                       table => { table.AddColumn("layer").AddColumn(new TableColumn("weights").RightAligned()).AddColumn(new TableColumn("sparsity").RightAligned());
                                  foreach (var l in layers) table.AddRow(Markup.Escape(l.Layer), l.Elements.ToString("N0"), l.Sparsity.ToString("P1")); });
                return ExitCodes.Success;
            }

            var groups = ChannelGroups.Analyze(original);
            if (!groups.Prunable.Any()) throw new UserInputException(NothingPrunable(file.FullName, original, groups));
            var channelCriterion = ChannelCriterion.Parse(parse.GetValue(criterion)!);
            Objectives.Data.Dataset? images = null;
            if (channelCriterion.NeedsData)
            {
                string spec = parse.GetValue(data) ?? throw new UserInputException($"--criterion {channelCriterion} measures activations: give --data (e.g. --data fashion-mnist)");
                images = TrainingRunner.LoadData(spec, ModelInterface.Read(original)).Train;
                TrainingRunner.CheckFits(original, images);
            }
            var importance = channelCriterion.Create(images, parse.GetValue(batches), parse.GetValue(seed));
            var selector = new ChannelSelection(groups, importance);
            int multiple = parse.GetValue(roundTo);
            if (multiple < 1) throw new UserInputException($"--round-to must be at least 1, got {multiple}");
            var counts = new Dictionary<int, int>();
            if (parse.GetValue(amount) is { } a)
            {
                var basis = parse.GetValue(global) ? selector.Global(a, multiple) : selector.Uniform(a, multiple);
                foreach (var group in groups.Prunable) counts[group.Index] = basis.KeptCount(group);
            }
            foreach (string spec in parse.GetValue(keep) ?? [])
            {
                int eq = spec.LastIndexOf('=');
                if (eq <= 0 || !int.TryParse(spec[(eq + 1)..], out int count))
                    throw new UserInputException($"--keep takes GROUP=COUNT (e.g. g3=16), got '{spec}'");
                var group = groups.Find(spec[..eq]);
                if (!group.Prunable) throw new UserInputException($"group {group.Name} is not prunable: {group.Reason}");
                if (count < group.MinKeep(multiple) || count > group.Size)
                    throw new UserInputException($"group {group.Name} has {group.Size} channels and keeps at least {group.MinKeep(multiple)}; cannot keep {count}");
                counts[group.Index] = count;
            }
            if (counts.Count == 0) throw new UserInputException("say how much to prune: --amount FRACTION and/or --keep GROUP=COUNT");

            var selection = selector.KeepCounts(counts);
            if (parse.GetValue(amount) is > 0 && parse.GetValue(keep) is not { Length: > 0 } && groups.Prunable.All(g => selection.KeptCount(g) == g.Size))
                throw new UserInputException($"--amount {parse.GetValue(amount)} prunes nothing" + (multiple > 1
                    ? $": with --round-to {multiple} every group keeps all its channels (largest group: {groups.Prunable.Max(g => g.Size)}); use a smaller --round-to"
                    : ": every group is too small to lose a channel at this amount; use a larger --amount"));
            var prunedModel = StructuredPruner.Prune(selection);
            OnnxModel.Save(prunedModel, outFile.FullName);
            var prunedCost = ModelCost.Analyze(prunedModel);
            Report(context, parse.GetValue(json), before, original, prunedCost, prunedModel, outFile,
                   groups.Prunable.Select(g => new { group = $"g{g.Index}", name = g.Name, channels = g.Size, kept = selection.KeptCount(g) }),
                   table => { table.AddColumn("group").AddColumn("name").AddColumn(new TableColumn("channels").RightAligned()).AddColumn(new TableColumn("kept").RightAligned());
                              foreach (var g in groups.Prunable) table.AddRow($"g{g.Index}", Markup.Escape(g.Name), g.Size.ToString(), selection.KeptCount(g).ToString()); });
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Why no channel can be removed, naming the ops that have no pruning rule first (an LSTM, a custom op): what the
    /// user must know before any option matters.</summary>
    static string NothingPrunable(string path, ModelProto model, ChannelGroups groups)
    {
        var unsupported = InspectCommand.OpsWithoutRules(model);
        var reasons = groups.Groups.Select(g => g.Reason).OfType<string>().Distinct().Take(3).ToList();
        return $"{path}: no channel of this model can be removed" +
               (unsupported.Count > 0 ? $"; unsupported ops: {string.Join(", ", unsupported)} (no pruning rule: the channels through them are left as they are)" : "") +
               (reasons.Count > 0 ? $"; {string.Join("; ", reasons)}" : groups.Groups.Count == 0 ? "; it has no convolution or linear layer" : "") +
               ". `paretoprune inspect --groups` lists its channel groups; `prune --unstructured` zeroes weights of any layer";
    }

    static void Report<T>(CliContext context, bool json, ModelCost before, ModelProto original, ModelCost after, ModelProto pruned,
                          FileInfo outFile, IEnumerable<T> details, Action<Table> fillTable)
    {
        long compressedBefore = ModelSize.Compressed(OnnxModel.ToBytes(original));
        long compressedAfter = ModelSize.Compressed(OnnxModel.ToBytes(pruned));
        if (json)
        {
            Json.Write(context.Output, new
            {
                output = outFile.FullName,
                before = new { macs = before.Macs, @params = before.Params, bytes = before.SerializedBytes, compressedBytes = compressedBefore },
                after = new { macs = after.Macs, @params = after.Params, bytes = after.SerializedBytes, compressedBytes = compressedAfter },
                details,
                provenance = "computed from the ONNX graphs; compressed = gzip of the file",
            });
            return;
        }
        var table = new Table().Border(TableBorder.Rounded);
        fillTable(table);
        context.Console.Write(table);
        var summary = new Table().Border(TableBorder.Rounded).AddColumn("").AddColumn(new TableColumn("before").RightAligned())
            .AddColumn(new TableColumn("after").RightAligned()).AddColumn(new TableColumn("ratio").RightAligned());
        void Row(string what, long b, long a, Func<long, string> format) =>
            summary.AddRow(what, format(b), format(a), b == 0 ? "" : ((double)a / b).ToString("P1"));
        Row("MACs", before.Macs, after.Macs, Units.Count);
        Row("params", before.Params, after.Params, Units.Count);
        Row("file", before.SerializedBytes, after.SerializedBytes, Units.Bytes);
        Row("file, gzip", compressedBefore, compressedAfter, Units.Bytes);
        context.Console.Write(summary);
        context.Console.MarkupLine($"wrote [bold]{Markup.Escape(outFile.FullName)}[/] [grey](figures computed from the graphs)[/]");
    }
}
