using System.Diagnostics;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using ParetoPrune.MLNet;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;
using SkiaSharp;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>The consumer package: an exported model as an ML.NET transformer, checked against ONNX Runtime run directly.</summary>
[Collection(nameof(SourceBuildCollection))]
public sealed class PrunedClassifierTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("pruned-classifier-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    string Shipped() => CliRunner.ShippedModel(directory);

    [Fact]
    public void PredictionsAreTheModelsOwnSoftmaxAndArgmaxWithItsClassNames()
    {
        string model = Shipped();
        var test = DatasetCatalog.LoadEmbeddedSample().Test.Take([.. Enumerable.Range(0, 40)]);
        using var classifier = PrunedClassifier.Load(new MLContext(seed: 0), model);
        Assert.Equal((1, 28, 28), (classifier.Declaration.Channels, classifier.Declaration.Height, classifier.Declaration.Width));
        Assert.Equal(test.ClassNames, classifier.Declaration.ClassNames);

        // Independently: ONNX Runtime on the same images, softmax by hand.
        using var session = new InferenceSession(model);
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(classifier.Declaration.InputName, new DenseTensor<float>(test.Pixels, [test.Count, 1, 28, 28]))]);
        var logits = results.First().AsTensor<float>();
        var images = Enumerable.Range(0, test.Count).Select(i => test.Image(i).ToArray()).ToList();
        var viaDataView = classifier.Transformer.Transform(classifier.Data(images));
        var labels = viaDataView.GetColumn<string>(nameof(ImagePrediction.PredictedLabel)).ToList();
        var scores = viaDataView.GetColumn<float[]>(nameof(ImagePrediction.Score)).ToList();
        for (int i = 0; i < test.Count; i++)
        {
            var row = Enumerable.Range(0, 10).Select(c => (double)logits[i, c]).ToArray();
            double max = row.Max(), sum = row.Sum(v => Math.Exp(v - max));
            var expected = row.Select(v => Math.Exp(v - max) / sum).ToArray();
            var prediction = classifier.Predict(images[i]);
            Assert.Equal(test.ClassNames[Array.IndexOf(row, max)], prediction.PredictedLabel);
            for (int c = 0; c < 10; c++) Assert.Equal(expected[c], prediction.Score[c], 5);
            Assert.Equal(prediction.PredictedLabel, labels[i]); // the IDataView path is the same pipeline
            Assert.Equal(prediction.Score, scores[i]);
        }
    }

    [Fact]
    public void ImageFilesAreReadAsTrainingReadsThemAndMistakesAreNamed()
    {
        // A grey PNG of a test image: decoded back to its pixels, and to what the image-folder dataset reader gives.
        var test = DatasetCatalog.LoadEmbeddedSample().Test;
        string folder = Path.Combine(directory, "data");
        foreach (string split in new[] { "train", "test" })
        {
            Directory.CreateDirectory(Path.Combine(folder, split, "bag"));
            using var bitmap = new SKBitmap(28, 28, SKColorType.Gray8, SKAlphaType.Opaque);
            for (int y = 0; y < 28; y++)
                for (int x = 0; x < 28; x++)
                {
                    byte v = (byte)Math.Round(test.Image(9)[y * 28 + x] * 255);
                    bitmap.SetPixel(x, y, new SKColor(v, v, v));
                }
            using var file = File.Create(Path.Combine(folder, split, "bag", "image.png"));
            bitmap.Encode(file, SKEncodedImageFormat.Png, 100);
        }
        string png = Path.Combine(folder, "test", "bag", "image.png");
        var pixels = PrunedClassifier.LoadImage(png, 1, 28, 28);
        for (int p = 0; p < pixels.Length; p++) Assert.Equal(test.Image(9)[p], pixels[p], 5);
        Assert.Equal(ImageFolderReader.Read(Path.Combine(folder, "test"), 28, 28, 1).Image(0).ToArray(), pixels);
        Assert.Equal(ImageFolderReader.Read(Path.Combine(folder, "test"), 16, 16, 3).Image(0).ToArray(), PrunedClassifier.LoadImage(png, 3, 16, 16));

        using var classifier = PrunedClassifier.Load(new MLContext(seed: 0), Shipped());
        Assert.Equal(classifier.Predict(test.Image(9).ToArray()).PredictedLabel, classifier.Predict(png).PredictedLabel);
        var wrongSize = Assert.Throws<ArgumentException>(() => classifier.Predict(new float[10]));
        Assert.Contains("1×28×28 = 784 pixel values, got 10", wrongSize.Message);
        string text = Path.Combine(directory, "not-an-image.png");
        File.WriteAllText(text, "hello");
        Assert.Contains("not an image", Assert.Throws<InvalidDataException>(() => classifier.Predict(text)).Message);

        string bare = Path.Combine(directory, "bare.onnx");
        OnnxModel.Save(Architectures.SimpleCnn(1, 28, 10, [4, 4, 8, 8], seed: 3), bare);
        Assert.Contains("declares no class names", Assert.Throws<InvalidDataException>(() => PrunedClassifier.Load(new MLContext(), bare)).Message);
    }

    [Fact]
    public void APackedLibraryRestoresIntoAFreshConsoleAppThatClassifiesAnImage()
    {
        string feed = Path.Combine(directory, "feed");
        string mlnet = Path.Combine(Repository.Root, "src", "MLNet", "MLNet.csproj");
        // A version of its own: restore caches a package by id and version, so a fixed one would restore an earlier run's.
        string version = $"0.0.1-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        var pack = DotnetTool.Run("dotnet", directory, TimeSpan.FromMinutes(5), "pack", "--disable-build-servers", mlnet, "-c", "Release", "-o", feed, $"-p:PackageVersion={version}");
        Assert.True(pack.Code == 0, pack.Output);
        Assert.Single(Directory.GetFiles(feed, $"ParetoPrune.MLNet.{version}.nupkg"));

        // A console app outside the repository (none of its build settings), restoring the package from the folder.
        string app = Directory.CreateDirectory(Path.Combine(directory, "app")).FullName;
        File.WriteAllText(Path.Combine(app, "app.csproj"), $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings>
                <NoWarn>NU1603;NU1608</NoWarn></PropertyGroup>
              <ItemGroup><PackageReference Include="ParetoPrune.MLNet" Version="{{version}}" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using ParetoPrune.MLNet;
            using var classifier = PrunedClassifier.Load(new Microsoft.ML.MLContext(), args[0]);
            var prediction = classifier.Predict(args[1]);
            Console.WriteLine($"{prediction.PredictedLabel} {prediction.Score.Sum():0.000}");
            """);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <configuration><packageSources><add key="local" value="{feed}" /></packageSources></configuration>
            """);
        string image = Path.Combine(Repository.Root, "examples", "MlNetConsumer", "images", "trouser.png");
        var run = DotnetTool.Run("dotnet", app, TimeSpan.FromMinutes(5), "run", "--disable-build-servers", "-c", "Release", "--", Shipped(), image);
        Assert.True(run.Code == 0, run.Output);
        Assert.EndsWith("Trouser 1.000", run.Output.Trim());
        DotnetTool.ForgetPackage("ParetoPrune.MLNet", version);
    }

}
