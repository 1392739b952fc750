using ParetoPrune.Optimizer.Search;
using ParetoPrune.Tests.Shared;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// A .NET developer's first program: a console app outside the repository (none of its build settings, no project
/// references) that restores the packed ParetoPrune.Optimizer from a folder and runs a 2-trial search with TorchSharp
/// fine-tuning. On Debian 12 this trains only if the libtorch fix travels with the package.
/// </summary>
[Collection(nameof(SourceBuildCollection))]
public sealed class LibraryPackageTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("library-package-").FullName;

    /// <summary>A version of its own: restore caches a package by id and version, so a fixed one would restore the
    /// package an earlier run packed, not this one.</summary>
    readonly string version = $"0.0.1-test.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";

    static readonly TimeSpan Patience = TimeSpan.FromMinutes(8);

    public void Dispose()
    {
        Directory.Delete(directory, true);
        foreach (string id in new[] { "ParetoPrune.Objectives", "ParetoPrune.Devices", "ParetoPrune.Optimizer" }) DotnetTool.ForgetPackage(id, version);
    }

    [Fact]
    public void APackedOptimizerRestoresIntoAFreshConsoleAppThatRunsASearch()
    {
        string feed = Path.Combine(directory, "feed");
        foreach (string project in new[] { "Objectives", "Devices", "Optimizer" })
        {
            var pack = DotnetTool.Run("dotnet", directory, Patience, "pack", "--disable-build-servers", Path.Combine(Repository.Root, "src", project, $"{project}.csproj"), "-c", "Release", "-o", feed,
                           $"-p:PackageVersion={version}");
            Assert.True(pack.Code == 0, pack.Output);
        }
        using (var package = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, $"ParetoPrune.Optimizer.{version}.nupkg")))
        {
            var entries = package.Entries.Select(e => e.FullName).ToList();
            Assert.Contains("build/ParetoPrune.Optimizer.targets", entries);
            Assert.Contains("buildTransitive/ParetoPrune.Optimizer.targets", entries);
            using var nuspec = new StreamReader(package.GetEntry("ParetoPrune.Optimizer.nuspec")!.Open());
            Assert.Contains("<license type=\"expression\">MIT</license>", nuspec.ReadToEnd());
        }

        string app = Directory.CreateDirectory(Path.Combine(directory, "app")).FullName;
        File.WriteAllText(Path.Combine(app, "app.csproj"), $$"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup><OutputType>Exe</OutputType><TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable><RuntimeIdentifier>linux-x64</RuntimeIdentifier><SelfContained>false</SelfContained>
                <NoWarn>NU1603;NU1608</NoWarn></PropertyGroup>
              <ItemGroup><PackageReference Include="ParetoPrune.Optimizer" Version="{{version}}" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "Program.cs"), """
            using Microsoft.ML;
            using ParetoPrune.Objectives;
            using ParetoPrune.Objectives.Data;
            using ParetoPrune.Optimizer.Sampling;
            using ParetoPrune.Optimizer.Search;
            using ParetoPrune.Optimizer.Studies;

            var options = new PruningSearchOptions
            {
                OutputDirectory = args[1],
                Objectives = [ObjectiveKind.Accuracy, ObjectiveKind.Macs],
                Trials = 2,
                Fidelity = new FidelityOptions { RecalibrationBatches = 2, BatchSize = 32, ScreeningSteps = 5, PromoteCount = 1, PromotionSteps = 5,
                                                 FinalCount = 1, FinalEpochs = 1, FinalStepsPerEpoch = 5 },
            };
            var mlContext = new MLContext(seed: 0);
            mlContext.Log += (_, e) => { if (e.Source.StartsWith("ParetoPrune")) Console.WriteLine(e.Message); };
            var data = SearchData.From(DatasetCatalog.LoadEmbeddedSample(), validationLimit: 200);
            var result = await new PruningSearch(mlContext, options).RunAsync(args[0], data);
            Console.WriteLine($"search {result.Status.Name()}: {result.Trials.Count} trials, {result.Front.Count} on the front");
            """);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <configuration><packageSources><add key="local" value="{feed}" /></packageSources></configuration>
            """);
        string model = CliRunner.TinyModel(directory);
        var run = DotnetTool.Run("dotnet", app, Patience, "run", "--disable-build-servers", "-c", "Release", "--", model, Path.Combine(directory, "run"));
        Assert.True(run.Code == 0, run.Output);
        Assert.Contains("search finished: 2 trials", run.Output);
        Assert.Contains("[Source=ParetoPrune.Search, Kind=Info] screening 2/2", run.Output); // progress, with one line of code
        Assert.True(File.Exists(Path.Combine(directory, "run", PruningSearch.StudyFile)));
    }

}
