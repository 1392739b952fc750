// Prune a model from C#: analyse its channel groups, prune half of every prunable group by L1 norm (rounded to 8
// channels), recalibrate BatchNorm on a few training batches, fine-tune briefly with distillation, and score both
// models through ML.NET. Usage: dotnet run --project examples/PruneFromCode -c Release -- [MODEL.onnx] [OUT.onnx]
using Microsoft.ML;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Scoring;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

string modelPath = args.Length > 0 ? args[0] : "models/simplecnn-fashion-mnist.onnx";
string outputPath = args.Length > 1 ? args[1] : Path.Combine(Path.GetTempPath(), "pruned-from-code.onnx");

var model = OnnxModel.Load(modelPath);
var data = DatasetCatalog.LoadEmbeddedSample();              // or DatasetCatalog.LoadFashionMnist() for the full set
// (The shipped model was trained on the full Fashion-MNIST, which contains these sample images: its "validation"
// accuracy here is optimistic. Use data it never saw for honest figures.)
var (train, validation) = DatasetSplit.Stratified(data.Train, 0.1, seed: 0);

// 1. Which channels must go together, and how much each group may lose.
var groups = ChannelGroups.Analyze(model);
Console.WriteLine($"{groups.Prunable.Count()} prunable channel groups, {groups.Prunable.Sum(g => g.Size)} channels");

// 2. Half of every group, least important first by filter L1 norm, kept counts rounded to multiples of 8.
var selection = new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5, roundTo: 8);
var (predictedMacs, _) = PrunedCost.Predict(selection);   // exact, before building anything
var pruned = StructuredPruner.Prune(selection);
Console.WriteLine($"MACs {ModelCost.Analyze(model).Macs:N0} → {ModelCost.Analyze(pruned).Macs:N0} (predicted {predictedMacs:N0})");

// 3. Recalibrate BatchNorm statistics (cheap), then fine-tune one short epoch distilling from the original.
using var module = new OnnxModule(pruned);
Trainer.RecalibrateBatchNorm(module, train, batches: 20);
Console.WriteLine($"after BN recalibration: validation accuracy {Trainer.Evaluate(module, validation).Accuracy:P2}");
Trainer.Train(module, train, validation, new TrainingOptions
{
    Epochs = 1, MaxStepsPerEpoch = 20, LearningRate = 0.01, Distillation = new Distillation(model),
});
OnnxModel.Save(ModelSurgery.FoldBatchNorm(module.WriteBack()), outputPath);   // BN folded: ready to deploy

// 4. Score both the way an ML.NET app would run them.
var scorer = new ClassifierScorer(new MLContext(seed: 0));
var before = scorer.Score(modelPath, validation, "validation");
var after = scorer.Score(outputPath, validation, "validation");
Console.WriteLine($"validation top-1: {before.Top1:P2} → {after.Top1:P2} ({after.Provenance})");
Console.WriteLine($"wrote {outputPath}");
