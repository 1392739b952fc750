using System.Text.Json;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using SkiaSharp;

namespace ParetoPrune.MLNet;

/// <summary>What an exported model declares in its metadata: its input and output, class names and image shape.</summary>
/// <param name="Channels">Image channels (1 grey, 3 RGB); pixels go in N×C×H×W, scaled to [0, 1] (normalisation is inside the model).</param>
public sealed record ModelDeclaration(string InputName, string OutputName, IReadOnlyList<string> ClassNames, int Channels, int Height, int Width)
{
    /// <summary>Values per image: <see cref="Channels"/> × <see cref="Height"/> × <see cref="Width"/>.</summary>
    public int PixelCount => Channels * Height * Width;

    /// <summary>Reads the declaration of <paramref name="modelPath"/>.</summary>
    /// <exception cref="FileNotFoundException">No file there.</exception>
    /// <exception cref="InvalidDataException">The model is not a single-input image classifier, or declares no class names.</exception>
    public static ModelDeclaration Read(string modelPath)
    {
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"no model at {modelPath}", modelPath);
        using var session = new InferenceSession(modelPath);
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count < 1)
            throw new InvalidDataException($"{modelPath} has {session.InputMetadata.Count} inputs; an exported image classifier has one");
        var (input, inputInfo) = session.InputMetadata.First();
        var (output, outputInfo) = session.OutputMetadata.First();
        var metadata = session.ModelMetadata.CustomMetadataMap;
        if (inputInfo.ElementType != typeof(float) || inputInfo.Dimensions.Length != 4)
            throw new InvalidDataException($"{modelPath}: input '{input}' is {inputInfo.ElementType.Name}[{string.Join(", ", inputInfo.Dimensions)}], not float N×C×H×W");
        if (metadata.TryGetValue("paretoprune.input_layout", out var layout) && layout != "NCHW")
            throw new InvalidDataException($"{modelPath}: input layout {layout}, not NCHW");
        string[] names = metadata.TryGetValue("paretoprune.class_names", out var json) ? JsonSerializer.Deserialize<string[]>(json) ?? []
            : throw new InvalidDataException($"{modelPath} declares no class names (paretoprune.class_names); was it written by ParetoPrune?");
        int[] shape = inputInfo.Dimensions[1..];
        if (outputInfo.Dimensions[^1] > 0 && outputInfo.Dimensions[^1] != names.Length)
            throw new InvalidDataException($"{modelPath}: {outputInfo.Dimensions[^1]} outputs but {names.Length} class names");
        return new ModelDeclaration(input, output, names, shape[0], shape[1], shape[2]);
    }
}

/// <summary>One image to classify: <see cref="ModelDeclaration.PixelCount"/> values in [0, 1], N×C×H×W order (planes of rows).</summary>
public sealed class ImageInput
{
    public float[] Pixels { get; set; } = [];
}

/// <summary>A classification: the most likely class and the probability of every class (softmax of the model's logits).</summary>
public sealed class ImagePrediction
{
    public string PredictedLabel { get; set; } = "";

    /// <summary>Probabilities, in the order of <see cref="ModelDeclaration.ClassNames"/>.</summary>
    public float[] Score { get; set; } = [];
}

/// <summary>
/// An exported ParetoPrune model as an ML.NET transformer: <c>Pixels</c> (float vector, <see cref="ImageInput"/>) →
/// <c>Score</c> (softmax probabilities) and <c>PredictedLabel</c> (the class name), through <c>ApplyOnnxModel</c>.
/// <code>
/// var classifier = PrunedClassifier.Load(new MLContext(), "trial-7.onnx");
/// ImagePrediction p = classifier.Predict("shoe.png");   // p.PredictedLabel, p.Score
/// </code>
/// </summary>
public sealed class PrunedClassifier : IDisposable
{
    readonly MLContext mlContext;
    readonly PredictionEngine<ImageInput, ImagePrediction> engine;
    readonly Lock gate = new();

    PrunedClassifier(MLContext mlContext, ModelDeclaration declaration, ITransformer transformer, SchemaDefinition inputSchema)
    {
        (this.mlContext, Declaration, Transformer, InputSchema) = (mlContext, declaration, transformer, inputSchema);
        engine = mlContext.Model.CreatePredictionEngine<ImageInput, ImagePrediction>(transformer, inputSchemaDefinition: inputSchema);
    }

    public ModelDeclaration Declaration { get; }

    /// <summary>The fitted pipeline, for <c>Transform</c> over an <see cref="IDataView"/> with a <c>Pixels</c> column (<see cref="Data"/>).</summary>
    public ITransformer Transformer { get; }

    /// <summary>The schema of <see cref="ImageInput"/> for this model (the pixel vector's size).</summary>
    public SchemaDefinition InputSchema { get; }

    /// <summary>Builds the pipeline for the model at <paramref name="modelPath"/> from what it declares.</summary>
    public static PrunedClassifier Load(MLContext mlContext, string modelPath)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        var declaration = ModelDeclaration.Read(modelPath);
        var inputSchema = SchemaDefinition.Create(typeof(ImageInput));
        inputSchema[nameof(ImageInput.Pixels)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, declaration.PixelCount);
        var scoresSchema = SchemaDefinition.Create(typeof(Logits));
        scoresSchema[nameof(Logits.Scores)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, declaration.ClassNames.Count);
        var names = declaration.ClassNames.ToArray();
        var pipeline = mlContext.Transforms.CopyColumns(declaration.InputName, nameof(ImageInput.Pixels))
            // The batch dimension is symbolic in the file; ML.NET feeds one row at a time.
            .Append(mlContext.Transforms.ApplyOnnxModel([declaration.OutputName], [declaration.InputName], modelPath,
                new Dictionary<string, int[]> { [declaration.InputName] = [1, declaration.Channels, declaration.Height, declaration.Width] },
                gpuDeviceId: null, fallbackToCpu: true))
            .Append(mlContext.Transforms.CopyColumns(nameof(Logits.Scores), declaration.OutputName))
            .Append(mlContext.Transforms.CustomMapping<Logits, ImagePrediction>((logits, prediction) => Classify(logits.Scores, names, prediction),
                contractName: null, inputSchemaDefinition: scoresSchema));
        var transformer = pipeline.Fit(mlContext.Data.LoadFromEnumerable(new List<ImageInput>(), inputSchema));
        return new PrunedClassifier(mlContext, declaration, transformer, inputSchema);
    }

    /// <summary>Classifies one image given as pixels (<see cref="ImageInput"/>).</summary>
    public ImagePrediction Predict(float[] pixels)
    {
        if (pixels.Length != Declaration.PixelCount)
            throw new ArgumentException($"the model takes {Declaration.Channels}×{Declaration.Height}×{Declaration.Width} = {Declaration.PixelCount} pixel values, got {pixels.Length}", nameof(pixels));
        lock (gate) return engine.Predict(new ImageInput { Pixels = pixels });
    }

    /// <summary>Classifies an image file (PNG, JPEG, …), resized to the model's input and converted to its channels.</summary>
    public ImagePrediction Predict(string imageFile) => Predict(LoadImage(imageFile, Declaration.Channels, Declaration.Height, Declaration.Width));

    /// <summary>Images as an <see cref="IDataView"/> with this model's <c>Pixels</c> column, for <see cref="Transformer"/>.</summary>
    public IDataView Data(IEnumerable<float[]> images) =>
        mlContext.Data.LoadFromEnumerable(images.Select(p => new ImageInput { Pixels = p }), InputSchema);

    /// <summary>
    /// Decodes an image file and returns it as <paramref name="channels"/>×<paramref name="height"/>×<paramref name="width"/>
    /// values in [0, 1], planes of rows, exactly as ParetoPrune reads image-folder datasets for training (bilinear resize to
    /// RGBA; grey as 0.299 R + 0.587 G + 0.114 B), so a deployed model sees what it trained on.
    /// </summary>
    public static float[] LoadImage(string path, int channels, int height, int width)
    {
        if (channels is not (1 or 3)) throw new ArgumentOutOfRangeException(nameof(channels), channels, "1 (grey) or 3 (RGB) channels");
        using var decoded = SKBitmap.Decode(path) ?? throw new InvalidDataException($"{path} is not an image SkiaSharp can decode (PNG, JPEG, BMP, GIF, WebP)");
        using var resized = decoded.Resize(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul),
                                           new SKSamplingOptions(SKFilterMode.Linear, SKMipmapMode.Linear))
                            ?? throw new InvalidDataException($"{path} could not be resized from {decoded.Width}×{decoded.Height} to {width}×{height}");
        var rgba = resized.GetPixelSpan();
        int plane = height * width;
        var values = new float[channels * plane];
        for (int p = 0; p < plane; p++)
        {
            int at = p / width * resized.RowBytes + p % width * 4;
            float r = rgba[at] / 255f, g = rgba[at + 1] / 255f, b = rgba[at + 2] / 255f;
            if (channels == 1) values[p] = 0.299f * r + 0.587f * g + 0.114f * b;
            else (values[p], values[plane + p], values[2 * plane + p]) = (r, g, b);
        }
        return values;
    }

    static void Classify(float[] logits, string[] names, ImagePrediction prediction)
    {
        float max = logits.Max();
        var exp = logits.Select(v => MathF.Exp(v - max)).ToArray();
        float sum = exp.Sum();
        prediction.Score = exp.Select(v => v / sum).ToArray();
        prediction.PredictedLabel = names[Array.IndexOf(logits, max)];
    }

    public void Dispose() => engine.Dispose();

    /// <summary>The model's output under a fixed name.</summary>
    sealed class Logits
    {
        public float[] Scores { get; set; } = [];
    }
}
