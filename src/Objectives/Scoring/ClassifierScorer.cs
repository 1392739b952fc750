using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Transforms;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;

namespace ParetoPrune.Objectives.Scoring;

/// <summary>Accuracy metrics of a classifier on a dataset, with how they were obtained.</summary>
/// <param name="Top1">Micro accuracy: the share of images whose highest score is the label.</param>
/// <param name="MacroAccuracy">Mean of the per-class accuracies (recalls).</param>
/// <param name="LogLoss">Mean negative log-probability of the label, after softmax of the model's logits.</param>
/// <param name="ConfusionMatrix">Counts [true class][predicted class].</param>
public sealed record ClassificationMetrics(
    double Top1, double Top5, double MacroAccuracy, double LogLoss, IReadOnlyList<double> PerClassAccuracy,
    IReadOnlyList<IReadOnlyList<int>> ConfusionMatrix, IReadOnlyList<string> ClassNames, int Count, Provenance Provenance);

/// <summary>
/// Scores ONNX classifiers the way an ML.NET app runs them: the dataset as an <see cref="IDataView"/>,
/// <c>ApplyOnnxModel</c>, a softmax, and ML.NET's multiclass evaluator. The model takes N×C×H×W pixels in [0, 1]
/// (normalisation is in the graph) and returns one logit per class.
/// </summary>
public sealed class ClassifierScorer
{
    readonly MLContext mlContext;

    public ClassifierScorer(MLContext mlContext) => this.mlContext = mlContext;

    /// <param name="split">Which part of the data this is ("validation", "test"), recorded in the provenance.</param>
    public ClassificationMetrics Score(string modelPath, Dataset data, string split)
    {
        var model = OnnxModel.Load(modelPath);
        var graph = new OnnxGraph(model);
        string inputName = graph.Inputs[0].Name, outputName = graph.Outputs[0].Name;
        var cost = ModelCost.Analyze(graph, [1, data.Channels, data.Height, data.Width]);
        int classes = data.ClassNames.Count;
        if (cost.OutputShape.Length != 2 || cost.OutputShape[1] != classes)
            throw new ArgumentException($"the model returns [{string.Join("x", cost.OutputShape)}] but the data has {classes} classes");

        var pipeline = ScoringPipeline(modelPath, inputName, outputName, data);
        var view = ToDataView(data, inputName);
        var scored = pipeline.Fit(view).Transform(view);
        var metrics = mlContext.MulticlassClassification.Evaluate(scored, "Label", "Score", "PredictedLabel", topKPredictionCount: Math.Min(5, classes));

        var confusion = metrics.ConfusionMatrix.Counts.Select(row => (IReadOnlyList<int>)row.Select(c => (int)c).ToArray()).ToArray();
        return new ClassificationMetrics(
            metrics.MicroAccuracy, metrics.TopKAccuracy, metrics.MacroAccuracy, metrics.LogLoss,
            metrics.ConfusionMatrix.PerClassRecall.ToArray(), confusion, data.ClassNames, data.Count,
            Provenance.Scored($"{data.Source} ({data.Count:N0} images)", split));
    }

    /// <summary>ApplyOnnxModel, then softmax into "Score" and the arg-max into the key column "PredictedLabel".</summary>
    internal IEstimator<ITransformer> ScoringPipeline(string modelPath, string inputName, string outputName, Dataset data)
    {
        int classes = data.ClassNames.Count;
        var keys = mlContext.Data.LoadFromEnumerable(Enumerable.Range(0, classes).Select(c => new ClassRow { Value = (uint)c }));
        var outputDefinition = SchemaDefinition.Create(typeof(ScoredRow));
        outputDefinition[nameof(ScoredRow.Score)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, classes);
        var inputDefinition = SchemaDefinition.Create(typeof(LogitsRow));
        inputDefinition[nameof(LogitsRow.Logits)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, classes);

        return mlContext.Transforms.ApplyOnnxModel(
                   outputColumnNames: [outputName], inputColumnNames: [inputName], modelFile: modelPath,
                   shapeDictionary: new Dictionary<string, int[]> { [inputName] = [1, data.Channels, data.Height, data.Width] },
                   gpuDeviceId: null, fallbackToCpu: true)
            .Append(mlContext.Transforms.CopyColumns(nameof(LogitsRow.Logits), outputName))
            .Append(mlContext.Transforms.CustomMapping<LogitsRow, ScoredRow>(Softmax, contractName: null, inputDefinition, outputDefinition))
            .Append(mlContext.Transforms.Conversion.MapValueToKey("Label", nameof(ImageRow.LabelIndex),
                                                                  keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue, keyData: keys))
            .Append(mlContext.Transforms.Conversion.MapValueToKey("PredictedLabel", nameof(ScoredRow.PredictedIndex),
                                                                  keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue, keyData: keys));
    }

    /// <summary>The dataset as rows of a fixed-size pixel vector named like the model's input, and a 0-based label.</summary>
    internal IDataView ToDataView(Dataset data, string inputName)
    {
        var definition = SchemaDefinition.Create(typeof(ImageRow));
        var pixels = definition[nameof(ImageRow.Pixels)];
        pixels.ColumnType = new VectorDataViewType(NumberDataViewType.Single, data.ImageSize);
        pixels.ColumnName = inputName;
        var rows = Enumerable.Range(0, data.Count).Select(i => new ImageRow { Pixels = data.Image(i).ToArray(), LabelIndex = (uint)data.Labels[i] });
        return mlContext.Data.LoadFromEnumerable(rows, definition);
    }

    static void Softmax(LogitsRow input, ScoredRow output)
    {
        var logits = input.Logits;
        float max = logits.Max();
        var exponentials = new double[logits.Length];
        double total = 0;
        for (int i = 0; i < logits.Length; i++) total += exponentials[i] = Math.Exp(logits[i] - max);
        var score = new float[logits.Length];
        int best = 0;
        for (int i = 0; i < score.Length; i++)
        {
            score[i] = (float)(exponentials[i] / total);
            if (logits[i] > logits[best]) best = i; // ties and underflow cannot reorder the arg-max
        }
        output.Score = score;
        output.PredictedIndex = (uint)best;
    }

    sealed class ImageRow
    {
        public float[] Pixels { get; set; } = [];
        public uint LabelIndex { get; set; }
    }

    sealed class ClassRow
    {
        public uint Value { get; set; }
    }

    sealed class LogitsRow
    {
        public float[] Logits { get; set; } = [];
    }

    sealed class ScoredRow
    {
        public float[] Score { get; set; } = [];
        public uint PredictedIndex { get; set; }
    }
}
