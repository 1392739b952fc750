// An ML.NET app that deploys a model ParetoPrune exported: the ParetoPrune.MLNet package reads the class names and input
// shape from the model and gives typed predictions. Usage: MlNetConsumer [MODEL.onnx] [IMAGE ...]
using Microsoft.ML;
using ParetoPrune.MLNet;

string here = AppContext.BaseDirectory;
string model = args.FirstOrDefault(a => a.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) ?? Path.Combine(here, "simplecnn-fashion-mnist.onnx");
string[] images = args.Where(a => !a.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)).ToArray() is { Length: > 0 } given
    ? given : Directory.GetFiles(Path.Combine(here, "images"), "*.png").Order().ToArray();
try
{
    using var classifier = PrunedClassifier.Load(new MLContext(seed: 0), model);
    var d = classifier.Declaration;
    Console.WriteLine($"{Path.GetFileName(model)}: {d.Channels}×{d.Height}×{d.Width} images, {d.ClassNames.Count} classes");
    foreach (string image in images)
    {
        ImagePrediction prediction = classifier.Predict(image);
        Console.WriteLine($"{Path.GetFileName(image),-18} {prediction.PredictedLabel,-12} {prediction.Score.Max():P1}");
    }
    return 0;
}
catch (Exception e) when (e is IOException or InvalidDataException or ArgumentException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
