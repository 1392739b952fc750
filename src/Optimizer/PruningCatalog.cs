using Microsoft.ML;
using Microsoft.ML.Data;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Search;

namespace ParetoPrune.Optimizer;

/// <summary><c>mlContext.Pruning()</c>: ParetoPrune from an <see cref="MLContext"/>, as <c>mlContext.Auto()</c> gives AutoML's experiments.</summary>
public static class MLContextPruningExtensions
{
    public static PruningCatalog Pruning(this MLContext mlContext) => new(mlContext);
}

/// <summary>
/// The search from ML.NET: data as <see cref="IDataView"/>s with a feature vector and a label column, named as ML.NET
/// names them by default. <code>
/// var result = await mlContext.Pruning().SearchAsync("base.onnx", train, test, new PruningSearchOptions { OutputDirectory = "run" });
/// var model = result.CreateTransformer(result.Best()!);   // an ITransformer, ready for the app's pipeline
/// </code>
/// </summary>
public sealed class PruningCatalog
{
    readonly MLContext mlContext;

    internal PruningCatalog(MLContext mlContext) => this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>A search with these options (the same as <c>new PruningSearch(mlContext, options)</c>).</summary>
    public PruningSearch CreateSearch(PruningSearchOptions options) => new(mlContext, options);

    /// <summary>
    /// Searches the model at <paramref name="modelPath"/> on images given as IDataViews. A stratified
    /// <paramref name="validationFraction"/> of <paramref name="train"/> ranks candidates; <paramref name="test"/>, when given,
    /// scores the exported models and, for a model that records its training images, serves as unseen validation data
    /// (<see cref="SearchData.For"/>). Each row holds the image's C×H×W pixels in [0, 1], NCHW, in
    /// <paramref name="featureColumnName"/> and its class in <paramref name="labelColumnName"/> (a key, or a class index).
    /// </summary>
    public Task<PruningSearchResult> SearchAsync(string modelPath, IDataView train, IDataView? test, PruningSearchOptions options,
                                                 string featureColumnName = "Features", string labelColumnName = "Label",
                                                 double validationFraction = 0.1, int? validationLimit = null, IProgress<SearchProgress>? progress = null,
                                                 CancellationToken stop = default, CancellationToken abort = default)
    {
        var model = OnnxModel.Load(modelPath);
        var shape = ModelInterface.Read(model)
                    ?? throw new ArgumentException($"{modelPath} does not record its input shape and class names (models written by ParetoPrune do); " +
                                                   "use PruningSearch with a Dataset instead", nameof(modelPath));
        var trainImages = LoadImages(train, shape, featureColumnName, labelColumnName, "training IDataView");
        SearchData data;
        if (test is null)
        {
            var (fit, validation) = DatasetSplit.Stratified(trainImages, validationFraction, options.Seed);
            data = new SearchData(fit, validation, null, $"training IDataView ({trainImages.Count:N0} images; validation held out of it, stratified)",
                                  Caveat: TrainingImages.Read(model) is null ? null
                                      : "the model records the images it trained on, and whether this IDataView is among them cannot be told; give a test IDataView");
        }
        else
        {
            var testImages = LoadImages(test, shape, featureColumnName, labelColumnName, "test IDataView");
            data = SearchData.For(model, new TrainTest(trainImages, testImages, $"IDataView ({trainImages.Count:N0} training / {testImages.Count:N0} test images)"),
                                  validationFraction, options.Seed, validationLimit);
        }
        return CreateSearch(options).RunAsync(modelPath, data, progress, stop, abort);
    }

    /// <summary>Reads images from an IDataView into the in-memory <see cref="Dataset"/> the search trains on.</summary>
    /// <exception cref="ArgumentException">A column is missing or of the wrong type, a row has the wrong number of pixels, or a label is out of range; the message names the column and row.</exception>
    public Dataset LoadImages(IDataView data, ModelInterface shape, string featureColumnName = "Features",
                              string labelColumnName = "Label", string source = "IDataView")
    {
        int size = shape.Channels * shape.Height * shape.Width, classes = shape.ClassNames.Count;
        DataViewSchema.Column Column(string name) => data.Schema.GetColumnOrNull(name)
            ?? throw new ArgumentException($"{source} has no column '{name}' (it has {string.Join(", ", data.Schema.Select(c => $"'{c.Name}'"))})");
        var features = Column(featureColumnName);
        if (features.Type is not VectorDataViewType { ItemType: var item } vector || item.RawType != typeof(float) || (vector.Size != 0 && vector.Size != size))
            throw new ArgumentException($"{source}: column '{featureColumnName}' must be a vector of {size} floats ({shape.Channels}×{shape.Height}×{shape.Width} " +
                                        $"pixels in [0, 1], NCHW); it is {features.Type}");
        var label = Column(labelColumnName);

        var pixels = new List<float>();
        var labels = new List<int>();
        using var cursor = data.GetRowCursor([features, label]);
        var getFeatures = cursor.GetGetter<VBuffer<float>>(features);
        var getLabel = LabelReader(cursor, label, source);
        var buffer = default(VBuffer<float>);
        for (long row = 0; cursor.MoveNext(); row++)
        {
            getFeatures(ref buffer);
            if (buffer.Length != size) throw new ArgumentException($"{source}: row {row} has {buffer.Length} values in '{featureColumnName}', not {size}");
            pixels.AddRange(buffer.DenseValues());
            int value = getLabel(row);
            if (value < 0 || value >= classes)
                throw new ArgumentException($"{source}: row {row} has label {value} in '{labelColumnName}'; the model tells {classes} classes apart (0 to {classes - 1})");
            labels.Add(value);
        }
        if (labels.Count == 0) throw new ArgumentException($"{source} has no rows");
        return new Dataset([.. pixels], [.. labels], shape.ClassNames, shape.Channels, shape.Height, shape.Width, source);
    }

    /// <summary>A class index from a key column (1-based, 0 missing) or an integer or whole-valued float column.</summary>
    static Func<long, int> LabelReader(DataViewRowCursor cursor, DataViewSchema.Column column, string source)
    {
        Func<long, int> Read<T>(Func<T, long, int> convert)
        {
            var getter = cursor.GetGetter<T>(column);
            return row => { T value = default!; getter(ref value); return convert(value, row); };
        }
        int Whole(double value, long row) => value == Math.Floor(value) && Math.Abs(value) < int.MaxValue ? (int)value
            : throw new ArgumentException($"{source}: row {row} has label {value} in '{column.Name}', not a class index");
        return column.Type switch
        {
            KeyDataViewType { RawType: var raw } when raw == typeof(uint) => Read<uint>((k, row) => k > 0 ? (int)k - 1
                : throw new ArgumentException($"{source}: row {row} has a missing label in '{column.Name}'")),
            NumberDataViewType n when n.RawType == typeof(int) => Read<int>((v, _) => v),
            NumberDataViewType n when n.RawType == typeof(uint) => Read<uint>((v, _) => (int)v),
            NumberDataViewType n when n.RawType == typeof(long) => Read<long>((v, row) => Whole(v, row)),
            NumberDataViewType n when n.RawType == typeof(float) => Read<float>((v, row) => Whole(v, row)),
            NumberDataViewType n when n.RawType == typeof(double) => Read<double>(Whole),
            var type => throw new ArgumentException($"{source}: column '{column.Name}' holds {type}; labels must be a key or a class index"),
        };
    }
}
