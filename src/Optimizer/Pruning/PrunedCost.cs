using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Ops;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// MACs and parameters of a pruned model, computed from the original graph and a selection without building the
/// pruned model (the search evaluates thousands of candidates this way): each op's own cost rule
/// (<see cref="OpRule.Macs"/>, <see cref="OpRule.LearnableInputs"/>) applied to the shapes the pruned model will have,
/// so it counts exactly as <see cref="ModelCost"/> counts the pruned file.
/// </summary>
public static class PrunedCost
{
    public static (long Macs, long Params) Predict(PruningSelection selection)
    {
        var (macs, parameters, _) = PredictWithStatistics(selection);
        return (macs, parameters);
    }

    /// <summary>Also the other stored floats kept (BN running statistics and other constants), for the file size.</summary>
    internal static (long Macs, long Params, long Statistics) PredictWithStatistics(PruningSelection selection)
    {
        var groups = selection.Groups;
        var graph = groups.Graph;
        var plan = SlicePlan.Of(selection);

        long[] ShapeOf(string tensor)
        {
            if (graph.IsConstant(tensor)) return plan.SlicedDims(tensor);
            var shape = groups.Shapes[tensor].Shape;
            if (!groups.TryGetSpace(tensor, out var space)) return shape;
            var pruned = shape.ToArray();
            pruned[space.Axis] = plan.KeptOf(space.Ids).Count(k => k);
            return pruned;
        }

        long macs = 0, parameters = 0, statistics = 0;
        var learnable = new HashSet<string>(StringComparer.Ordinal); // a shared weight is counted once
        foreach (var node in graph.Nodes)
        {
            var rule = OpRegistry.Find(node);
            if (rule is null) continue;
            macs += rule.Macs(node, ShapeOf);
            foreach (int slot in rule.LearnableInputs(node))
            {
                if (slot >= node.Input.Count) continue;
                string name = node.Input[slot];
                if (name.Length == 0 || !graph.IsInitializer(name) || OnnxTensors.IsInteger(graph.Constant(name)!.DataType) || !learnable.Add(name)) continue;
                parameters += ShapeMath.Product(ShapeOf(name));
            }
        }
        foreach (var initializer in groups.Model.Graph.Initializer)
            if (initializer.DataType == (int)TensorProto.Types.DataType.Float && !learnable.Contains(initializer.Name)) statistics += ShapeMath.Product(ShapeOf(initializer.Name));
        return (macs, parameters, statistics);
    }
}
