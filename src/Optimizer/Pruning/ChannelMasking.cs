using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Pruning;

/// <summary>
/// The reference a physically pruned model must equal: the original graph with the removed channels forced to zero
/// in every tensor that carries them (a Mul by a 0/1 mask after each producer). Zeroing every tensor, not only the
/// conv output, matters: BN's β and a bias would otherwise turn a zeroed channel into a constant.
/// </summary>
public static class ChannelMasking
{
    public static ModelProto Mask(PruningSelection selection)
    {
        var groups = selection.Groups;
        var model = groups.Model.Clone();
        var keptIds = selection.KeptIds();
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        var nodes = new List<NodeProto>();
        int counter = 0;
        foreach (var node in model.Graph.Node)
        {
            for (int i = 0; i < node.Input.Count; i++)
                if (renamed.TryGetValue(node.Input[i], out var masked)) node.Input[i] = masked;
            nodes.Add(node);
            foreach (string output in node.Output)
            {
                if (output.Length == 0 || groups.Graph.IsGraphOutput(output) || !groups.TryGetSpace(output, out var space)) continue;
                var mask = space.Ids.Select(id => keptIds[id] ? 1f : 0f).ToArray();
                if (mask.All(m => m == 1f)) continue;
                var shape = groups.Shapes[output].Shape;
                var dims = shape.Select((_, d) => d == space.Axis ? (long)mask.Length : 1L).ToArray();
                string maskName = $"channel_mask_{counter}";
                string maskedName = $"{output}_masked_{counter++}";
                model.Graph.Initializer.Add(OnnxTensors.CreateFloat(maskName, dims, mask));
                var mul = new NodeProto { OpType = "Mul", Name = $"mask_{maskedName}" };
                mul.Input.Add(output);
                mul.Input.Add(maskName);
                mul.Output.Add(maskedName);
                nodes.Add(mul);
                renamed[output] = maskedName;
            }
        }
        model.Graph.Node.Clear();
        model.Graph.Node.Add(nodes);
        return model;
    }
}
