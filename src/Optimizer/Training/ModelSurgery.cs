using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Optimizer.Training;

/// <summary>Graph rewrites around training: folding BatchNorm for deployment, and cutting the classifier to a class subset.</summary>
public static class ModelSurgery
{
    /// <summary>
    /// Folds every BatchNormalization that directly follows a Conv (whose output nothing else reads) into that Conv:
    /// W' = W·γ/√(σ²+ε), b' = (b − μ)·γ/√(σ²+ε) + β. Same outputs, fewer nodes, faster on every runtime.
    /// </summary>
    public static ModelProto FoldBatchNorm(ModelProto model)
    {
        var result = model.Clone();
        var graph = new OnnxGraph(result);
        var initializers = result.Graph.Initializer.ToDictionary(i => i.Name);
        var removed = new HashSet<NodeProto>(ReferenceEqualityComparer.Instance);
        foreach (var bn in graph.Nodes.Where(n => n.OpType == "BatchNormalization").ToList())
        {
            var conv = graph.Producer(bn.Input[0]);
            if (conv is null || conv.OpType != "Conv" || graph.Consumers(bn.Input[0]).Count != 1 || graph.IsGraphOutput(bn.Input[0])
                || bn.Output.Skip(1).Any(o => o.Length > 0) || !bn.Input.Skip(1).All(graph.IsInitializer) || !graph.IsInitializer(conv.Input[1]))
                continue;
            float[] gamma = OnnxTensors.ReadFloats(initializers[bn.Input[1]]), beta = OnnxTensors.ReadFloats(initializers[bn.Input[2]]);
            float[] mean = OnnxTensors.ReadFloats(initializers[bn.Input[3]]), variance = OnnxTensors.ReadFloats(initializers[bn.Input[4]]);
            double epsilon = bn.GetFloat("epsilon", 1e-5f);
            var weightTensor = initializers[conv.Input[1]];
            float[] weight = OnnxTensors.ReadFloats(weightTensor);
            int outputs = gamma.Length, perOutput = weight.Length / outputs;
            float[] bias = conv.Input.Count > 2 && conv.Input[2].Length > 0 ? OnnxTensors.ReadFloats(initializers[conv.Input[2]]) : new float[outputs];
            for (int o = 0; o < outputs; o++)
            {
                double scale = gamma[o] / Math.Sqrt(variance[o] + epsilon);
                for (int k = 0; k < perOutput; k++) weight[o * perOutput + k] = (float)(weight[o * perOutput + k] * scale);
                bias[o] = (float)((bias[o] - mean[o]) * scale + beta[o]);
            }
            // New names: a weight shared with another node must not change under it.
            string weightName = Fresh(initializers, conv.Input[1] + "_folded");
            string biasName = Fresh(initializers, (conv.Input.Count > 2 && conv.Input[2].Length > 0 ? conv.Input[2] : conv.Input[1]) + "_bias_folded");
            initializers[weightName] = OnnxTensors.CreateFloat(weightName, weightTensor.Dims.ToArray(), weight);
            initializers[biasName] = OnnxTensors.CreateFloat(biasName, [outputs], bias);
            conv.Input[1] = weightName;
            if (conv.Input.Count > 2) conv.Input[2] = biasName; else conv.Input.Add(biasName);
            conv.Output[0] = bn.Output[0];
            removed.Add(bn);
        }
        var kept = result.Graph.Node.Where(n => !removed.Contains(n)).ToList();
        result.Graph.Node.Clear();
        result.Graph.Node.Add(kept);
        var used = kept.SelectMany(n => n.Input).ToHashSet();
        result.Graph.Initializer.Clear();
        result.Graph.Initializer.Add(initializers.Values.Where(i => used.Contains(i.Name)));
        result.Graph.ValueInfo.Clear();
        return result;
    }

    /// <summary>
    /// Keeps only the given classes (in that order) in the classifier that produces the graph output: its weight rows and
    /// bias entries for the other classes are removed, and the class names follow. For task specialisation.
    /// </summary>
    public static ModelProto KeepClasses(ModelProto model, IReadOnlyList<int> classes)
    {
        var result = model.Clone();
        var graph = new OnnxGraph(result);
        string output = graph.Outputs[0].Name;
        var classifier = graph.Producer(output);
        while (classifier is not null && classifier.OpType is "Identity" or "Softmax" or "LogSoftmax" or "Dropout")
            classifier = graph.Producer(classifier.Input[0]);
        if (classifier is null || classifier.OpType != "Gemm" || !graph.IsInitializer(classifier.Input[1]))
            throw new ArgumentException("the model's output must come from a Gemm classifier with constant weights to keep a class subset");
        bool transB = classifier.GetInt("transB", 0) != 0;
        var weight = result.Graph.Initializer.Single(i => i.Name == classifier.Input[1]);
        long total = transB ? weight.Dims[0] : weight.Dims[1];
        if (classes.Count == 0 || classes.Any(c => c < 0 || c >= total) || classes.Distinct().Count() != classes.Count)
            throw new ArgumentException($"classes must be distinct values in 0..{total - 1}, got [{string.Join(", ", classes)}]");
        var values = OnnxTensors.ReadFloats(weight);
        long inner = transB ? weight.Dims[1] : weight.Dims[0];
        var sliced = new float[classes.Count * inner];
        for (int k = 0; k < classes.Count; k++)
            for (long i = 0; i < inner; i++)
                sliced[transB ? k * inner + i : i * classes.Count + k] = values[transB ? classes[k] * inner + i : i * total + classes[k]];
        Replace(result, weight.Name, OnnxTensors.CreateFloat(weight.Name, transB ? [classes.Count, inner] : [inner, classes.Count], sliced));
        if (classifier.Input.Count > 2 && classifier.Input[2].Length > 0)
        {
            var bias = OnnxTensors.ReadFloats(result.Graph.Initializer.Single(i => i.Name == classifier.Input[2]));
            Replace(result, classifier.Input[2], OnnxTensors.CreateFloat(classifier.Input[2], [classes.Count], classes.Select(c => bias[c]).ToArray()));
        }
        var dims = result.Graph.Output[0].Type?.TensorType?.Shape?.Dim;
        if (dims is { Count: 2 }) dims[1] = new TensorShapeProto.Types.Dimension { DimValue = classes.Count };
        if (ModelInterface.Read(result) is { } declared)
            (declared with { ClassNames = classes.Select(c => declared.ClassNames[c]).ToArray() }).WriteTo(result);
        result.Graph.ValueInfo.Clear();
        return result;
    }

    static void Replace(ModelProto model, string name, TensorProto tensor)
    {
        var initializers = model.Graph.Initializer;
        for (int i = 0; i < initializers.Count; i++) if (initializers[i].Name == name) initializers[i] = tensor;
    }

    static string Fresh(Dictionary<string, TensorProto> existing, string wanted)
    {
        string name = wanted;
        for (int i = 1; existing.ContainsKey(name); i++) name = $"{wanted}_{i}";
        return name;
    }
}
