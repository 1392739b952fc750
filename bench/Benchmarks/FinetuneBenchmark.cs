using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Benchmarks;

/// <summary>
/// How much accuracy a 50 %-pruned model recovers, and at what cost: right after L1 pruning, after BN recalibration
/// (100 batches), and after 1 and 3 epochs of fine-tuning with and without distillation from the unpruned model.
/// Full Fashion-MNIST; the validation split is the one `train` held out (10 %, seed 0); the test set is reported too.
/// </summary>
static class FinetuneBenchmark
{
    public static void Run(string modelPath)
    {
        var baseModel = OnnxModel.Load(modelPath);
        var data = DatasetCatalog.LoadFashionMnist();
        var (train, validation) = DatasetSplit.Stratified(data.Train, 0.1, seed: 0);
        Console.WriteLine($"{modelPath}; {data.Description}; {train.Count} training, {validation.Count} validation, {data.Test.Count} test images\n");
        Console.WriteLine("| model | MACs | validation | test | time |");
        Console.WriteLine("| --- | --- | --- | --- | --- |");
        using (var unpruned = new OnnxModule(baseModel)) Row("unpruned", baseModel, unpruned, validation, data.Test, TimeSpan.Zero);

        var groups = ChannelGroups.Analyze(baseModel);
        var pruned = StructuredPruner.Prune(new ChannelSelection(groups, new WeightImportance(WeightImportance.Criterion.L1)).Uniform(0.5));
        using (var module = new OnnxModule(pruned)) Row("50 % L1-pruned, as is", pruned, module, validation, data.Test, TimeSpan.Zero);
        using (var module = new OnnxModule(pruned))
        {
            var watch = Stopwatch.StartNew();
            Trainer.RecalibrateBatchNorm(module, train, batches: 100, batchSize: 128);
            Row("+ BN recalibration (100 batches)", pruned, module, validation, data.Test, watch.Elapsed);
        }
        foreach (int epochs in new[] { 1, 3 })
            foreach (bool distil in new[] { false, true })
            {
                using var module = new OnnxModule(pruned);
                var options = new TrainingOptions
                {
                    Epochs = epochs, LearningRate = 0.01, WarmupEpochs = 0, Seed = 0,
                    Distillation = distil ? new Distillation(baseModel) : null,
                };
                var watch = Stopwatch.StartNew();
                Trainer.Train(module, train, null, options);
                Row($"+ fine-tune {epochs} epoch{(epochs > 1 ? "s" : "")}{(distil ? ", distilled (T 4, weight 0.7)" : "")}", pruned, module, validation, data.Test, watch.Elapsed);
            }
    }

    static void Row(string name, Objectives.Onnx.Proto.ModelProto model, OnnxModule module, Dataset validation, Dataset test, TimeSpan time) =>
        Console.WriteLine($"| {name} | {ModelCost.Analyze(model).Macs / 1e6:0.00} M | {Trainer.Evaluate(module, validation).Accuracy:P2} | " +
                          $"{Trainer.Evaluate(module, test).Accuracy:P2} | {(time == TimeSpan.Zero ? "—" : $"{time.TotalMinutes:0.0} min")} |");
}
