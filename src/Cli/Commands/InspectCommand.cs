using System.CommandLine;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Optimizer.Pruning;
using Spectre.Console;

namespace ParetoPrune.Cli.Commands;

/// <summary><c>paretoprune inspect MODEL.onnx [--json] [--input-shape 1x3x32x32]</c>: per-layer MACs, parameters and shapes.</summary>
static class InspectCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<FileInfo>("model") { Description = "ONNX model file" };
        var json = new Option<bool>("--json") { Description = "print JSON for scripts instead of tables" };
        var inputShape = new Option<string?>("--input-shape")
        {
            Description = "input shape, e.g. 1x3x32x32 (default: the model's, with a symbolic batch as 1)",
        };
        var groups = new Option<bool>("--groups") { Description = "list the channel groups (channels that must be pruned together)" };
        var command = new Command("inspect", "Show a model's layers with their output shapes, MACs and parameters, and the totals.")
        {
            model, json, inputShape, groups,
        };
        command.SetAction(parse =>
        {
            var file = parse.GetRequiredValue(model);
            var shape = parse.GetValue(inputShape) is { } text ? ShapeInference.ParseShape(text) : null;
            // The size on disk, as the user sees it (our own encoding of the same model can differ by a few bytes).
            var loaded = OnnxModel.Load(file.FullName, out var normalization);
            var cost = ModelCost.Analyze(loaded, shape) with { SerializedBytes = file.Length };
            if (parse.GetValue(groups))
            {
                var analysis = ChannelGroups.Analyze(loaded);
                if (parse.GetValue(json)) Json.Write(context.Output, GroupsJson(analysis, normalization));
                else WriteGroups(context.Console, file.Name, analysis, normalization, loaded);
                return ExitCodes.Success;
            }
            if (parse.GetValue(json)) WriteJson(context.Output, cost, normalization, loaded);
            else WriteTable(context.Console, file.Name, cost, normalization, loaded);
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>What the loader rewrote in the exporter's graph (the counts are of the rewritten graph), and weights that are
    /// not numbers (the counts stand, but every output of such a model is NaN: the other commands refuse it).</summary>
    static void WriteNormalization(IAnsiConsole console, Normalization normalization, ModelProto model)
    {
        foreach (var bad in InputChecks.NonFiniteWeights(model))
            console.MarkupLine($"[red]warning: initializer '{Markup.Escape(bad.Initializer)}' holds {bad.Count:N0} non-finite value(s) ({bad.Value} at index {bad.Index}): " +
                               "the model's outputs are not numbers; evaluate, measure, prune and search refuse it[/]");
        if (normalization.Changed) console.MarkupLine($"[grey]normalised on load: {Markup.Escape(normalization.ToString())}[/]");
        if (OpsWithoutRules(model) is { Count: > 0 } ops)
            console.MarkupLine($"[yellow]ops without rules: {Markup.Escape(string.Join(", ", ops))}[/] [grey](their shapes from ONNX Runtime; " +
                               "their MACs not counted; the channels through them are not pruned; training cannot run them)[/]");
    }

    /// <summary>The ops the pruning analysis has no rule for, by name (with their domain where it is not ONNX's).</summary>
    internal static List<string> OpsWithoutRules(ModelProto model) =>
        model.Graph.Node.Where(n => OpRegistry.Find(n) is null).Select(n => n.Domain.Length > 0 ? $"{n.Domain}.{n.OpType}" : n.OpType).Distinct().Order().ToList();

    static void WriteTable(IAnsiConsole console, string name, ModelCost cost, Normalization normalization, ModelProto model)
    {
        var table = new Table().Title($"{Markup.Escape(name)}: input {Shape(cost.InputShape)}").Border(TableBorder.Rounded);
        table.AddColumn("node").AddColumn("op").AddColumn("output").AddColumn(new TableColumn("MACs").RightAligned())
             .AddColumn(new TableColumn("params").RightAligned());
        foreach (var node in cost.Nodes)
            table.AddRow(Markup.Escape(node.Name), node.OpType, Shape(node.OutputShape),
                         node.Macs == 0 ? "" : node.Macs.ToString("N0"), node.Params == 0 ? "" : node.Params.ToString("N0"));
        table.AddEmptyRow();
        table.AddRow("[bold]total[/]", "", Shape(cost.OutputShape), $"[bold]{cost.Macs:N0}[/]", $"[bold]{cost.Params:N0}[/]");
        console.Write(table);
        console.MarkupLine($"MACs [bold]{Units.Count(cost.Macs)}[/], params [bold]{Units.Count(cost.Params)}[/], " +
                           $"file [bold]{Units.Bytes(cost.SerializedBytes)}[/], activations {Units.Bytes(cost.ActivationBytes)} " +
                           $"(peak {Units.Bytes(cost.PeakActivationBytes)}) [grey](computed from the graph)[/]");
        WriteNormalization(console, normalization, model);
    }

    static void WriteGroups(IAnsiConsole console, string name, ChannelGroups analysis, Normalization normalization, ModelProto model)
    {
        var table = new Table().Title($"{Markup.Escape(name)}: channel groups").Border(TableBorder.Rounded);
        table.AddColumn("group").AddColumn("name").AddColumn(new TableColumn("channels").RightAligned())
             .AddColumn("producers").AddColumn("consumers").AddColumn("prunable");
        foreach (var group in analysis.Groups)
            table.AddRow($"g{group.Index}", Markup.Escape(group.Name), group.Size.ToString(), group.Producers.Count.ToString(),
                         group.Consumers.Count.ToString(), group.Prunable ? "[green]yes[/]" : $"[grey]no: {Markup.Escape(group.Reason ?? "")}[/]");
        console.Write(table);
        console.MarkupLine($"{analysis.Prunable.Count()} of {analysis.Groups.Count} groups prunable, " +
                           $"{analysis.Prunable.Sum(g => g.Size)} channels in them.");
        WriteNormalization(console, normalization, model);
    }

    static object GroupsJson(ChannelGroups analysis, Normalization normalization) => new
    {
        normalization = normalization.Changed ? normalization.ToString() : null,
        groups = analysis.Groups.Select(g => new
        {
            index = g.Index, name = g.Name, size = g.Size, prunable = g.Prunable, reason = g.Reason,
            producers = g.Producers, consumers = g.Consumers,
        }),
    };

    static string Shape(long[] shape) => shape.Length == 0 ? "" : string.Join("×", shape);

    static void WriteJson(TextWriter output, ModelCost cost, Normalization normalization, ModelProto model)
    {
        var document = new
        {
            macs = cost.Macs,
            @params = cost.Params,
            bytes = cost.SerializedBytes,
            activationBytes = cost.ActivationBytes,
            peakActivationBytes = cost.PeakActivationBytes,
            inputShape = cost.InputShape,
            outputShape = cost.OutputShape,
            provenance = "computed from the ONNX graph",
            normalization = normalization.Changed ? normalization.ToString() : null,
            opsWithoutRules = OpsWithoutRules(model),
            nonFiniteWeights = InputChecks.NonFiniteWeights(model).Select(w => new { initializer = w.Initializer, count = w.Count, firstIndex = w.Index, firstValue = w.Value.ToString() }),
            nodes = cost.Nodes.Select(n => new { name = n.Name, op = n.OpType, outputShape = n.OutputShape, macs = n.Macs, @params = n.Params }),
        };
        Json.Write(output, document);
    }
}
