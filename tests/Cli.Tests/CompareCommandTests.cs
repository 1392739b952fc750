using System.Text.Json;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Cli.Tests;

public sealed class CompareCommandTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("compare-cli-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    /// <summary>An untrained tiny CNN for the embedded sample, with its interface (class names, normalisation) inside.</summary>
    string TinyModel()
    {
        string path = Path.Combine(directory, "tiny.onnx");
        var names = DatasetCatalog.LoadEmbeddedSample().Train.ClassNames;
        var model = new ModelInterface(names, 1, 28, 28, [0.29f], [0.35f]).Prepend(Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed: 2));
        OnnxModel.Save(model, path);
        return path;
    }

    static string[] Quick(string model, string output) =>
    [
        "compare", model, "--data", "fashion-mnist-sample", "--finetune-epochs", "1", "--max-steps-per-epoch", "1", "--specialise-epochs", "1",
        "--recalibration-batches", "1", "--importance-batches", "1", "--batch-size", "32", "--validation-limit", "100", "--threads", "2", "--out", output,
    ];

    [Fact]
    public async Task ComparesMethodsOnAllClassesAndANamedSubsetAndWritesTheReport()
    {
        string output = Path.Combine(directory, "run");
        var (code, stdout, error) = await CliRunner.RunAsync([.. Quick(TinyModel(), output), "--methods", "magnitude-global,l1", "--amount", "0.5",
                                                              "--classes", "trouser,BAG,5", "--json"]);
        Assert.True(code == 0, error);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("finished", json.GetProperty("status").GetString());
        Assert.Equal(4, json.GetProperty("points").GetInt32()); // two methods × one amount × (all classes, subset)
        Assert.Equal(["all", "classes:1,8,5"], json.GetProperty("baselines").EnumerateArray().Select(b => b.GetProperty("task").GetString()));
        var gains = json.GetProperty("specialisation").EnumerateArray().ToList();
        Assert.Equal(["magnitude-global", "l1"], gains.Select(g => g.GetProperty("method").GetString()));

        var csv = Optimizer.Reporting.Csv.Read(Path.Combine(output, "points.csv"));
        Assert.Equal(7, csv.Count); // header, two baselines, four points
        Assert.Contains(csv, row => row[0] == "classes:1,8,5" && row[1] == "l1" && row[2] == "structured");
        foreach (string file in new[] { "report.html", "best.csv", "specialisation.csv", "plots/accuracy-vs-amount.png", "plots/accuracy-vs-energy.svg",
                                        "plots/accuracy-vs-amount-classes-1-8-5.png" })
            Assert.True(File.Exists(Path.Combine(output, file)), $"{file} is missing");

        // Running again into the same directory needs --resume; resumed, nothing is left to do.
        var again = await CliRunner.RunAsync([.. Quick(TinyModel(), output), "--methods", "magnitude-global,l1", "--amounts", "0.5"]);
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("add --resume", again.Error);
        var resumed = await CliRunner.RunAsync([.. Quick(TinyModel(), output), "--methods", "magnitude-global,l1", "--amounts", "0.5", "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Error);
        Assert.Contains("best method at each amount", resumed.Output);
        Assert.DoesNotContain("magnitude-global 0.5:", resumed.Output); // no point evaluated again
    }

    [Theory]
    [InlineData("--methods", "l1,magic", "unknown pruning method 'magic'; methods are magnitude-global, magnitude-layer, l1")]
    [InlineData("--classes", "trouser,unicorn", "unknown class 'unicorn'; the classes are 0 T-shirt/top, 1 Trouser")]
    [InlineData("--amount", "0.5,1.5", "amounts are fractions in (0, 1); got 1.5")]
    [InlineData("--amounts", "half", "'half' is not a number")]
    public async Task BadRequestsFailClearlyAndStoreNothing(string option, string value, string message)
    {
        string output = Path.Combine(directory, "bad");
        var (code, _, error) = await CliRunner.RunAsync([.. Quick(TinyModel(), output), option, value]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.False(File.Exists(Path.Combine(output, "comparison.db")));
    }
}
