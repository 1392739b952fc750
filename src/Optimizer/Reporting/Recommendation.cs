using System.Globalization;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>One figure of the recommended model beside the baseline's, with where both came from.</summary>
/// <param name="Where">"this machine", "Raspberry Pi 4B": the machine a latency or energy belongs to; null for counts.</param>
public sealed record BaselineComparison(ObjectiveKind Kind, double Baseline, double Model, Provenance Provenance, string? Where = null)
{
    /// <summary>For an estimate: the 90 % interval of the model's figure (<see cref="ObjectiveValue.Interval"/>); else null.</summary>
    public ValueInterval? ModelInterval { get; init; }

    /// <summary>How many times smaller the model's figure is (above 1: a saving).</summary>
    public double Factor => Model > 0 ? Baseline / Model : double.PositiveInfinity;

    /// <summary>The change against the baseline as a fraction (−0.6: 60 % less).</summary>
    public double Change => Baseline > 0 ? Model / Baseline - 1 : 0;
}

/// <summary>
/// The answer to "which model do I deploy, and what does it cost on my device?": the most accurate exported model that
/// meets the study's constraints, its accuracy loss and savings against the baseline, its latency and energy on the
/// target device beside the host's, and how to take it out of the run and load it.
/// </summary>
/// <param name="Why">When there is nothing to recommend, why; null otherwise.</param>
public sealed record Recommendation(SearchCandidate? Model, string? Why, BaselineComparison? Accuracy, double? TestAccuracy, IReadOnlyList<BaselineComparison> Savings,
                                    IReadOnlyList<BaselineComparison> Device, string? HostLatencyNote, string ExportCommand, string CSharp)
{
    /// <summary>The recommended model against uniform pruning at the same bound, fine-tuned alike; null when the study
    /// carried no uniform baseline (<see cref="PruningSearchResult.UniformBaseline"/>).</summary>
    public UniformComparison? Uniform { get; init; }

    /// <summary>Why there is no <see cref="Uniform"/> comparison where the study asked for one (<see cref="PruningSearchResult.UniformBaselineAbsence"/>).</summary>
    public string? UniformAbsence { get; init; }

    /// <summary>The profile the card estimates a Pi with when the study has no figure of a target device.</summary>
    static readonly DeviceProfile FallbackProfile = DeviceProfile.RaspberryPi4B;

    public static Recommendation For(PruningSearchResult result)
    {
        string run = result.RunDirectory;
        string export = $"paretoprune export {Quote(run)} --out model.onnx";
        var best = result.Best();
        if (best is null)
            return new Recommendation(null, result.Front.Count == 0
                ? "no model has been exported yet (the final stage has not run)"
                : "no exported model meets every constraint: loosen a bound, or choose from the table below", null, null, [], [], null, export, CSharpSnippet);
        // A study on a server has no study.db in this run directory for `export` to read: the exported file is the model.
        export = File.Exists(Path.Combine(run, PruningSearch.StudyFile))
            ? $"paretoprune export {Quote(run)} --trial {best.Trial}{(best.Int8 ? " --int8" : "")} --out model.onnx"
            : $"cp {Quote(best.ModelPath)} model.onnx";

        var baseline = result.Baseline;
        var accuracy = new BaselineComparison(ObjectiveKind.Accuracy, baseline.Value(ObjectiveKind.Accuracy), best.Value(ObjectiveKind.Accuracy),
                                      best.Values.First(v => v.Kind == ObjectiveKind.Accuracy).Provenance);

        // Counts from the files themselves: exact, and present whatever the study's objectives were.
        string baseModel = File.Exists(Path.Combine(run, PruningSearch.SpecialisedBaseFile)) ? Path.Combine(run, PruningSearch.SpecialisedBaseFile) : result.Definition.ModelPath;
        var savings = new List<BaselineComparison>();
        var model = OnnxModel.Load(best.ModelPath);
        var modelCost = ModelCost.Analyze(model);
        var baseOnnx = File.Exists(baseModel) ? OnnxModel.Load(baseModel) : null;
        var baseCost = baseOnnx is null ? null : ModelCost.Analyze(baseOnnx);
        if (baseCost is not null)
        {
            savings.Add(new BaselineComparison(ObjectiveKind.Macs, baseCost.Macs, modelCost.Macs, Provenance.Computed));
            savings.Add(new BaselineComparison(ObjectiveKind.Params, baseCost.Params, modelCost.Params, Provenance.Computed));
            savings.Add(new BaselineComparison(ObjectiveKind.DenseBytes, new FileInfo(baseModel).Length, new FileInfo(best.ModelPath).Length, Provenance.Computed));
        }
        else if (best.Values.Any(v => v.Kind == ObjectiveKind.Macs))
            savings.Add(new BaselineComparison(ObjectiveKind.Macs, baseline.Value(ObjectiveKind.Macs), best.Value(ObjectiveKind.Macs), Provenance.Computed));

        // Latency and energy as the study obtained them, each on its machine; the Pi estimated where the study has no
        // figure of a target device (it measured only this machine, or nothing), or where its Pi estimate lacks one.
        var device = new List<BaselineComparison>();
        foreach (var kind in new[] { ObjectiveKind.Latency, ObjectiveKind.Energy })
            if (best.Values.FirstOrDefault(v => v.Kind == kind) is { } value)
                device.Add(new BaselineComparison(kind, baseline.Value(kind), value.Value, value.Provenance, Machine(value.Provenance)) { ModelInterval = value.Interval });
        bool onTarget(BaselineComparison c) => c.Where != ThisMachine;
        bool fallback = !device.Any(onTarget) || device.Where(onTarget).All(c => c.Provenance.Profile == FallbackProfile.Name);
        if (fallback && baseOnnx is not null && baseCost is not null)
        {
            var baseFigures = DeviceFigures.Estimated(FallbackProfile, DeviceCounts.Of(baseOnnx, baseCost), latency: true, energy: true, Fidelities.Computed);
            var modelFigures = DeviceFigures.Estimated(FallbackProfile, DeviceCounts.Of(model, modelCost), latency: true, energy: true, Fidelities.Computed);
            foreach (var (before, after) in baseFigures.Zip(modelFigures))
                if (!device.Any(c => onTarget(c) && c.Kind == after.Kind))
                    device.Add(new BaselineComparison(after.Kind, before.Value, after.Value, after.Provenance, FallbackProfile.Device) { ModelInterval = after.Interval });
        }
        string? hostNote = device.Any(c => c.Where == ThisMachine) ? null
            : $"this machine's latency was not measured in the study; measure it with: paretoprune measure {Quote(best.ModelPath)}";
        device = device.OrderBy(c => c.Where == ThisMachine).ThenBy(c => c.Kind).ToList();

        return new Recommendation(best, null, accuracy, best.TestAccuracy?.Value, savings, device, hostNote, export, CSharpSnippet)
        {
            Uniform = UniformComparison.Of(result, best),
            UniformAbsence = result.UniformBaselineAbsence,
        };
    }

    /// <summary>What the card calls the machine the report is written on.</summary>
    public const string ThisMachine = "this machine";

    static string? Machine(Provenance p) => p.Kind == ProvenanceKind.Measured && p.Device == Environment.MachineName ? ThisMachine : p.Device ?? p.Profile;

    /// <summary>"3.1× less, −68 %"; "+2 %" when it grew.</summary>
    public static string Describe(BaselineComparison c)
    {
        if (c.Model <= 0) return "none left";
        string percent = (c.Change * 100).ToString("+0;−0", CultureInfo.InvariantCulture) + " %";
        string interval = c.ModelInterval is { } i ? $"; 90 % interval {c.Kind.Format(i.Low)} to {c.Kind.Format(i.High)}" : "";
        return (c.Factor >= 1 ? $"{c.Factor.ToString("0.0#", CultureInfo.InvariantCulture)}× less, {percent}" : percent) + interval;
    }

    static string Quote(string path) => path.Contains(' ') ? $"\"{path}\"" : path;

    /// <summary>The report's snippet for an ML.NET app (compiled by the README snippet test, as a reader would paste it).</summary>
    internal const string CSharpSnippet = """
        // Not on nuget.org yet: make the package from a ParetoPrune checkout, then add it to the app:
        //   dotnet pack src/MLNet -c Release -o ~/paretoprune-packages
        //   dotnet nuget add source ~/paretoprune-packages --name paretoprune
        //   dotnet add package ParetoPrune.MLNet --version 0.1.0   (once on nuget.org, this line alone)
        using Microsoft.ML;
        using ParetoPrune.MLNet;

        using var classifier = PrunedClassifier.Load(new MLContext(), "model.onnx");
        ImagePrediction prediction = classifier.Predict("image.png"); // labels and input size: from the model
        Console.WriteLine($"{prediction.PredictedLabel} ({prediction.Score.Max():P1})");
        """;
}

/// <summary>
/// What per-layer allocation gained on this model: the recommended model against uniform pruning at the same cost bound
/// (the same fraction kept in every group), both taken through the same stages and fine-tuning.
/// </summary>
/// <param name="KeptFraction">The uniform model's kept share of all prunable channels.</param>
/// <param name="IsAnswer">The recommended model is the uniform one: no allocation the search found beat it on validation.</param>
public sealed record UniformComparison(SearchCandidate Uniform, double KeptFraction, double ValidationMargin, double? TestMargin, bool IsAnswer)
{
    internal static UniformComparison? Of(PruningSearchResult result, SearchCandidate best)
    {
        if (result.UniformBaseline is not { } uniform) return null;
        double kept = uniform.Kept.Sum() / (double)result.Dimensions.Sum(d => d.Size);
        double? testMargin = best.TestAccuracy is { } a && uniform.TestAccuracy is { } b ? a.Value - b.Value : null;
        return new UniformComparison(uniform, kept, best.Value(ObjectiveKind.Accuracy) - uniform.Value(ObjectiveKind.Accuracy), testMargin,
                                     best.Trial == uniform.Trial && !best.Int8);
    }

    /// <summary>One sentence for the report card and the command line.</summary>
    public string Describe()
    {
        string accuracy(double v) => ObjectiveKind.Accuracy.Format(v);
        string points(double d) => $"{d * 100:+0.00;−0.00} points";
        string test = Uniform.TestAccuracy is { } t ? $", test {accuracy(t.Value)}" : "";
        string where = $"uniform pruning at the same bound (every group at about {KeptFraction:P0} of its channels, trial {Uniform.Label}, " +
                       $"fine-tuned alike: validation {accuracy(Uniform.Value(ObjectiveKind.Accuracy))}{test})";
        if (IsAnswer) return $"The answer is {where}: no per-layer allocation the search found beat it on validation.";
        return $"Per-layer allocation gained {points(ValidationMargin)} on validation" + (TestMargin is { } m ? $" and {points(m)} on test" : "") +
               $" over {where}.";
    }
}
