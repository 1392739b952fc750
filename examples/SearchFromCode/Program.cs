// Run the search from C#, ML.NET style: screen pruned configurations of the shipped SimpleCnn on the embedded Fashion-MNIST
// sample for accuracy, MACs and Raspberry Pi 4B energy (estimated), fine-tune the most promising, and use the best exported
// model as an ML.NET transformer. One to two minutes on 2 cores.
// Usage: dotnet run --project examples/SearchFromCode -c Release -- [MODEL.onnx] [OUT_DIR] [--trials N]
using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

int trials = 12;
var positional = new List<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--trials" && i + 1 < args.Length) trials = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else positional.Add(args[i]);
}
string modelPath = positional.Count > 0 ? positional[0] : Path.Combine(FindRepository(), "models", "simplecnn-fashion-mnist.onnx");
string outputDirectory = positional.Count > 1 ? positional[1] : Path.Combine(Path.GetTempPath(), "search-from-code-run");

// A search refuses to overwrite a study (it would resume it only when asked): this is an example, so start afresh.
if (File.Exists(Path.Combine(outputDirectory, PruningSearch.StudyFile))) Directory.Delete(outputDirectory, recursive: true);

// The shipped model was trained on Fashion-MNIST's training images, the sample's included: rank candidates on half of the
// sample's test images (which it never saw) and keep the other half as a test split the search never looks at.
var sample = DatasetCatalog.LoadEmbeddedSample();
var (half, otherHalf) = DatasetSplit.Stratified(sample.Test, 0.5, seed: 0);
var test = half.WithSource($"{sample.Test.Source} [half held out for testing, stratified, seed 0]");
var validation = otherHalf.WithSource($"{sample.Test.Source} [half used for ranking, stratified, seed 0]");
var data = new SearchData(sample.Train, validation, test, $"{sample.Description}; ranked on half of its test images, tested on the other half");

var mlContext = new MLContext(seed: 0);
var options = new PruningSearchOptions
{
    OutputDirectory = outputDirectory,
    Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs, ObjectiveKind.Energy],
    Constraints = ConstraintSet.Parse(["accuracy >= baseline - 0.03", "macs <= 0.5*baseline"]),
    Devices = DeviceTargets.Estimated(DeviceProfile.RaspberryPi4B),   // no Pi at hand: energy from its profile, labelled "estimated"
    Trials = trials,
    // A small budget: BN recalibration only while screening, then 3 candidates × 30 steps, then the best 2 × 60 steps.
    Fidelity = new FidelityOptions { RecalibrationBatches = 10, PromoteCount = 3, PromotionSteps = 30, FinalCount = 2, FinalEpochs = 1, FinalStepsPerEpoch = 60 },
};

var watch = Stopwatch.StartNew();
var progress = new ConsoleProgress(p => Console.WriteLine(
    $"[{p.Elapsed:mm\\:ss}] {p.Stage.ToString().ToLowerInvariant()} {p.Completed}/{p.Total} · front {p.FrontSize} · {p.Message}"));
var result = await new PruningSearch(mlContext, options).RunAsync(modelPath, data, progress);
Console.WriteLine($"search {result.Status.Name()} in {watch.Elapsed.TotalSeconds:0} s; run directory {result.RunDirectory} (report.html, plots, models/)");

// The front: every value says how it was obtained (scored on which split, computed on the graph, estimated by which profile).
Console.WriteLine();
Console.WriteLine("baseline:");
foreach (var v in result.Baseline.Values.Where(v => options.Objectives.Contains(v.Kind))) Console.WriteLine($"  {v}");
foreach (var candidate in result.Front)
{
    Console.WriteLine($"trial {candidate.Trial}{(candidate.Feasible ? "" : " (infeasible)")}: kept [{string.Join(", ", candidate.Kept)}]");
    foreach (var v in candidate.Values) Console.WriteLine($"  {v}");
    if (candidate.TestAccuracy is { } t) Console.WriteLine($"  test {t}");
}

var best = result.Best();
if (best is null)
{
    Console.WriteLine("no exported model meets every constraint; raise --trials");
    return 1;
}
Console.WriteLine();
Console.WriteLine($"best under the constraints: trial {best.Trial}, {best.ModelPath}");

// The chosen model in ML.NET: a fitted ApplyOnnxModel transformer. It takes the model's input column (C·H·W pixels in [0, 1],
// NCHW; the normalisation is inside the graph) and adds its output column (one logit per class).
var transformer = result.CreateTransformer(best);
var graph = new OnnxGraph(OnnxModel.Load(best.ModelPath));
string inputName = graph.Inputs[0].Name, outputName = graph.Outputs[0].Name;
var classNames = ModelInterface.Read(graph.Model)?.ClassNames ?? test.ClassNames;

const int shown = 8;
var rows = Enumerable.Range(0, shown).Select(i => new ImageRow { Pixels = test.Image(i).ToArray() });
var schema = SchemaDefinition.Create(typeof(ImageRow));
var column = schema[nameof(ImageRow.Pixels)];
column.ColumnType = new VectorDataViewType(NumberDataViewType.Single, test.ImageSize);
column.ColumnName = inputName;   // the indexer finds columns by name: rename last
var scored = transformer.Transform(mlContext.Data.LoadFromEnumerable(rows, schema));
var logits = scored.GetColumn<float[]>(outputName).ToArray();
for (int i = 0; i < shown; i++)
{
    int predicted = Array.IndexOf(logits[i], logits[i].Max());
    Console.WriteLine($"  image {i}: predicted {classNames[predicted],-12} true {classNames[test.Labels[i]],-12} {(predicted == test.Labels[i] ? "✓" : "✗")}");
}
return 0;

// The folder holding Optimizer.sln, above the build output.
static string FindRepository()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        if (File.Exists(Path.Combine(directory.FullName, "Optimizer.sln"))) return directory.FullName;
    throw new DirectoryNotFoundException("Optimizer.sln not found above " + AppContext.BaseDirectory + "; give the model path as the first argument");
}

sealed class ImageRow
{
    public float[] Pixels { get; set; } = [];
}

// Progress<T> would post reports to the thread pool, out of order; print them as they come.
sealed class ConsoleProgress(Action<SearchProgress> report) : IProgress<SearchProgress>
{
    public void Report(SearchProgress value) => report(value);
}
