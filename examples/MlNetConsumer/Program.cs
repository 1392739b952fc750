// An ML.NET app that knows nothing of ParetoPrune: it loads a model the search exported (or any model in models/), reads the
// class names and input shape from the model's metadata, and classifies Fashion-MNIST test images with a PredictionEngine.
// Usage: dotnet run --project examples/MlNetConsumer -c Release -- [MODEL.onnx] [--data IDX_DIR] [--count N]
using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;

int count = 20;
string? modelPath = null, dataDirectory = null;
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--count" && i + 1 < args.Length) count = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
    else if (args[i] == "--data" && i + 1 < args.Length) dataDirectory = args[++i];
    else if (args[i].StartsWith("--", StringComparison.Ordinal)) return Fail(2, $"unknown option {args[i]}; usage: MlNetConsumer [MODEL.onnx] [--data IDX_DIR] [--count N]");
    else modelPath = args[i];
}
string? repository = FindRepository();
modelPath ??= repository is null ? null : Path.Combine(repository, "models", "simplecnn-fashion-mnist.onnx");
if (modelPath is null || !File.Exists(modelPath)) return Fail(2, $"no model at {modelPath ?? "(none given)"}; give the path of an ONNX model");
// The full test set when the Debian package is installed, else the repository's 2,000-image sample.
dataDirectory ??= File.Exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") ? "/usr/share/datasets/fashion-mnist"
    : repository is null ? null : Path.Combine(repository, "data", "fashion-mnist-sample");
if (dataDirectory is null || !File.Exists(Path.Combine(dataDirectory, "t10k-images-idx3-ubyte.gz")))
    return Fail(2, $"no t10k-images-idx3-ubyte.gz in {dataDirectory ?? "(none given)"}; give --data DIR");

// What the model expects, from ONNX Runtime: its input and output names and shapes, and the metadata_props the exporter wrote.
string inputName, outputName;
int[] inputShape, outputShape;
IReadOnlyDictionary<string, string> metadata;
using (var session = new InferenceSession(modelPath))
{
    if (session.InputMetadata.Count != 1) return Fail(1, $"the model has {session.InputMetadata.Count} inputs; an image classifier has one");
    var (input, inputInfo) = session.InputMetadata.First();
    var (output, outputInfo) = session.OutputMetadata.First();
    if (inputInfo.ElementType != typeof(float)) return Fail(1, $"input '{input}' holds {inputInfo.ElementType.Name}, not float");
    (inputName, outputName, inputShape, outputShape) = (input, output, inputInfo.Dimensions, outputInfo.Dimensions);
    metadata = session.ModelMetadata.CustomMetadataMap;
}
// Dimension 0 is the batch (symbolic, -1); the rest must be one 28×28 grey image, as Fashion-MNIST is.
int[]? declared = metadata.TryGetValue("paretoprune.input_shape", out var shapeJson) ? JsonSerializer.Deserialize<int[]>(shapeJson) : null;
if (!inputShape[1..].SequenceEqual([1, 28, 28]) || declared is not null && !declared.SequenceEqual([1, 28, 28]))
    return Fail(1, $"input '{inputName}' is [{string.Join(", ", inputShape)}]" + (declared is null ? "" : $" (declared C×H×W: [{string.Join(", ", declared)}])") +
                   "; this app feeds 1×28×28 float images");
if (metadata.TryGetValue("paretoprune.input_layout", out var layout) && layout != "NCHW") return Fail(1, $"input layout {layout}, not NCHW");
string[] classNames = metadata.TryGetValue("paretoprune.class_names", out var namesJson)
    ? JsonSerializer.Deserialize<string[]>(namesJson)!
    : ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];   // Fashion-MNIST's own
int classes = outputShape[^1] > 0 ? outputShape[^1] : classNames.Length;
Console.WriteLine($"{Path.GetFileName(modelPath)}: {inputName} [{string.Join("×", inputShape.Select(d => d < 0 ? "N" : d.ToString()))}] → " +
                  $"{outputName} ({classes} classes); pixels {metadata.GetValueOrDefault("paretoprune.pixel_range", "[0,1] (assumed)")}, " +
                  $"normalisation {(metadata.ContainsKey("paretoprune.normalization_mean") ? "inside the graph" : "unknown")}");

var (pixels, labels) = ReadIdx(dataDirectory, "t10k", count);
Console.WriteLine($"{labels.Length} test images from {dataDirectory}");

// Column names are the model's own, known only now: rename the POCO's columns through schema definitions.
var mlContext = new MLContext(seed: 0);
var inputSchema = SchemaDefinition.Create(typeof(ImageInput));
inputSchema[nameof(ImageInput.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, 28 * 28);
inputSchema[nameof(ImageInput.Pixels)].ColumnName = inputName;    // the indexer finds columns by name: rename last
var outputSchema = SchemaDefinition.Create(typeof(ImageScores));
outputSchema[nameof(ImageScores.Scores)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, classes);
outputSchema[nameof(ImageScores.Scores)].ColumnName = outputName;

// The batch dimension is symbolic in the file: fix it to one image, as the PredictionEngine feeds one row at a time.
var pipeline = mlContext.Transforms.ApplyOnnxModel([outputName], [inputName], modelPath,
    new Dictionary<string, int[]> { [inputName] = [1, 1, 28, 28] }, gpuDeviceId: null, fallbackToCpu: true);
var model = pipeline.Fit(mlContext.Data.LoadFromEnumerable(new List<ImageInput>(), inputSchema));
using var engine = mlContext.Model.CreatePredictionEngine<ImageInput, ImageScores>(model, inputSchemaDefinition: inputSchema, outputSchemaDefinition: outputSchema);

int correct = 0;
for (int i = 0; i < labels.Length; i++)
{
    var scores = engine.Predict(new ImageInput { Pixels = pixels[i] }).Scores;
    int predicted = Array.IndexOf(scores, scores.Max());
    correct += predicted == labels[i] ? 1 : 0;
    Console.WriteLine($"{i,4}  predicted {classNames[predicted],-12} true {classNames[labels[i]],-12} {(predicted == labels[i] ? "" : "✗")}");
}
Console.WriteLine($"accuracy: {correct}/{labels.Length} = {(double)correct / labels.Length:P1}");
return 0;

static int Fail(int code, string message)
{
    Console.Error.WriteLine("error: " + message);
    return code;
}

// The folder holding Optimizer.sln, above the build output (for the defaults); null when run elsewhere.
static string? FindRepository()
{
    for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        if (File.Exists(Path.Combine(directory.FullName, "Optimizer.sln"))) return directory.FullName;
    return null;
}

// Gzipped IDX: big-endian int32 magic (0x803 images, 0x801 labels), counts and sizes, then one byte per pixel or label.
static (float[][] Pixels, int[] Labels) ReadIdx(string directory, string split, int limit)
{
    using var images = new BinaryReader(new GZipStream(File.OpenRead(Path.Combine(directory, $"{split}-images-idx3-ubyte.gz")), CompressionMode.Decompress));
    using var labels = new BinaryReader(new GZipStream(File.OpenRead(Path.Combine(directory, $"{split}-labels-idx1-ubyte.gz")), CompressionMode.Decompress));
    int Int(BinaryReader r) => System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(r.ReadBytes(4));
    if (Int(images) != 0x803 || Int(labels) != 0x801) throw new InvalidDataException($"{directory}: not IDX image and label files");
    int n = Int(images), rows = Int(images), columns = Int(images);
    if (Int(labels) != n || rows != 28 || columns != 28) throw new InvalidDataException($"{directory}: {n} images of {rows}×{columns}, labels disagree or not 28×28");
    n = Math.Min(n, limit);
    var pixels = new float[n][];
    for (int i = 0; i < n; i++) pixels[i] = images.ReadBytes(rows * columns).Select(b => b / 255f).ToArray();   // [0, 1], one channel: NCHW is row order
    return (pixels, labels.ReadBytes(n).Select(b => (int)b).ToArray());
}

sealed class ImageInput
{
    public float[] Pixels { get; set; } = [];
}

sealed class ImageScores
{
    public float[] Scores { get; set; } = [];
}
