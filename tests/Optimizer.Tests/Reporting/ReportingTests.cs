using System.Buffers.Binary;
using System.Text;
using System.Xml;
using System.Xml.Linq;
using ParetoPrune.Optimizer.Reporting;
using SkiaSharp;

namespace ParetoPrune.Optimizer.Tests.Reporting;

public sealed class ReportingTests : IDisposable
{
    readonly string folder = Path.Combine(Path.GetTempPath(), "reporting-tests-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
    }

    static readonly PlotPoint[] AllRoles =
    [
        new(2.0e6, 0.80, PointRole.Dominated), new(5.0e6, 0.84, PointRole.Dominated), new(9.0e6, 0.86, PointRole.Dominated),
        new(1.5e6, 0.70, PointRole.Infeasible),
        new(8.0e6, 0.90, PointRole.Front), new(1.0e6, 0.82, PointRole.Front), new(3.0e6, 0.88, PointRole.Front),
        new(3.0e6, 0.885, PointRole.Chosen, "knee"),
        new(4.0e7, 0.92, PointRole.Baseline, "ResNet-20"),
        new(2.5e6, 0.40, PointRole.Screened), new(6.0e6, 0.55, PointRole.Screened), new(4.0e6, 0.75, PointRole.Promoted),
    ];

    // ---- plots ----

    [Fact]
    public void ParetoScatter_WritesPngOfTheRequestedSizeAndSvgWithTitleLabelsAndLegend()
    {
        var files = Plots.ParetoScatter(Path.Combine(folder, "nested", "pareto"), "Accuracy vs MACs", "MACs", "top-1 accuracy",
            AllRoles, [new ReferenceLine(0.85, Vertical: false, "min accuracy 85 %"), new ReferenceLine(2.0e7, Vertical: true, "MAC budget")]);

        Assert.Equal(Path.Combine(folder, "nested", "pareto.png"), files.Png);
        Assert.Equal(Path.Combine(folder, "nested", "pareto.svg"), files.Svg);
        Assert.Equal((Plots.Width, Plots.Height), PngSize(files.Png));
        string text = SvgText(files.Svg);
        foreach (string expected in new[] { "Accuracy vs MACs", "MACs", "top-1 accuracy", "dominated", "infeasible", "Pareto front",
                                            "chosen", "baseline", "min accuracy 85 %", "MAC budget", "knee", "ResNet-20" })
            Assert.Contains(expected, text);
    }

    [Fact]
    public void ParetoScatter_LegendHasOnlyTheRolesPresent()
    {
        PlotPoint[] points = [new(1, 0.5, PointRole.Dominated), new(2, 0.7, PointRole.Front), new(3, 0.8, PointRole.Front)];
        var files = Plots.ParetoScatter(Path.Combine(folder, "few"), "Search", "latency (ms)", "accuracy", points, []);

        string text = SvgText(files.Svg);
        Assert.Contains("dominated", text);
        Assert.Contains("Pareto front", text);
        Assert.DoesNotContain("infeasible", text);
        Assert.DoesNotContain("chosen", text);
        Assert.DoesNotContain("baseline", text);
    }

    [Fact]
    public void ParetoScatter_LabelsThePointsGivenALabelAndShowsTheSubtitle()
    {
        PlotPoint[] points = [new(1, 0.5, PointRole.Dominated, "trial-7"), new(2, 0.7, PointRole.Front, "trial-9"), new(2, 0.71, PointRole.Chosen, "pick"),
                              new(1.5, 0.3, PointRole.Screened), new(1.2, 0.4, PointRole.Infeasible, "trial-3")];
        string text = SvgText(Plots.ParetoScatter(Path.Combine(folder, "labels"), "t", "x", "y", points, [], subtitle: "energy: estimated by profile p").Svg);

        Assert.Contains("pick", text);
        Assert.Contains("trial-9", text);
        Assert.Contains("trial-7", text); // an exported model off the front is named too
        Assert.Contains("trial-3", text);
        Assert.Contains("energy: estimated by profile p", text);
    }

    [Fact]
    public void ParetoScatter_LegendsNameEachRoleAndCanBeReplaced()
    {
        var legends = new Dictionary<PointRole, string> { [PointRole.Screened] = "screening (BN recalibration only)", [PointRole.Front] = "fine-tuned front" };
        var labels = SvgTextElements(Plots.ParetoScatter(Path.Combine(folder, "legends"), "t", "x", "y", AllRoles, [], legends: legends).Svg);
        Assert.Contains("screening (BN recalibration only)", labels);
        Assert.Contains("fine-tuned front", labels);
        Assert.Contains("promoted", labels);          // default text where none is given
        Assert.DoesNotContain("Pareto front", labels); // replaced
    }

    [Fact]
    public void ParetoScatter_LogXLabelsTicksWithTheValuesNotTheirLogarithms()
    {
        var files = Plots.ParetoScatter(Path.Combine(folder, "log"), "log", "MACs", "accuracy", AllRoles,
            [new ReferenceLine(2.0e7, Vertical: true, "budget")], logX: true);

        Assert.Equal((Plots.Width, Plots.Height), PngSize(files.Png));
        var tickLabels = SvgTextElements(files.Svg);
        Assert.Contains("10M", tickLabels);
        Assert.Contains("1M", tickLabels);
        Assert.DoesNotContain("7", tickLabels); // log10(1e7) would be the label of a plain axis
    }

    [Fact]
    public void ParetoScatter_LogXLabelsANarrowRangeToo()
    {
        PlotPoint[] points = [new(4.6e6, 0.90, PointRole.Front), new(4.7e6, 0.91, PointRole.Front), new(4.9e6, 0.92, PointRole.Front)];
        var files = Plots.ParetoScatter(Path.Combine(folder, "narrow"), "narrow", "MACs", "accuracy", points, [], logX: true);

        var labels = SvgTextElements(files.Svg).Where(t => t.EndsWith('M')).ToList();
        Assert.True(labels.Count >= 2, $"tick labels: {string.Join(", ", labels)}");
    }

    [Fact]
    public void Plots_AcceptEmptyData()
    {
        Assert.True(File.Exists(Plots.ParetoScatter(Path.Combine(folder, "e1"), "empty", "x", "y", [], []).Png));
        Assert.True(File.Exists(Plots.ParetoScatter(Path.Combine(folder, "e2"), "empty", "x", "y", [], [], logX: true).Png));
        Assert.True(File.Exists(Plots.Lines(Path.Combine(folder, "e3"), "empty", "x", "y", []).Png));
        Assert.True(File.Exists(Plots.GroupedBars(Path.Combine(folder, "e4"), "empty", "y", [], []).Png));
    }

    [Fact]
    public void ParetoScatter_LogXRejectsNonPositiveValues()
    {
        Assert.Throws<ArgumentException>(() => Plots.ParetoScatter(Path.Combine(folder, "bad"), "t", "x", "y",
            [new PlotPoint(0, 1, PointRole.Front)], [], logX: true));
        Assert.Throws<ArgumentException>(() => Plots.ParetoScatter(Path.Combine(folder, "bad"), "t", "x", "y",
            [new PlotPoint(1, 1, PointRole.Front)], [new ReferenceLine(-1, Vertical: true, "l")], logX: true));
    }

    [Fact]
    public void Lines_WritesOneLegendEntryPerSeriesAndDashesTheDashedOnes()
    {
        var solid = Plots.Lines(Path.Combine(folder, "solid"), "Hypervolume", "trial", "hypervolume",
            [new Series("TPE", [1, 2, 3, 4], [0.1, 0.3, 0.35, 0.5]), new Series("random", [1, 2, 3, 4], [0.05, 0.2, 0.3, 0.32])]);
        var dashed = Plots.Lines(Path.Combine(folder, "dashed"), "Hypervolume", "trial", "hypervolume",
            [new Series("TPE", [1, 2, 3, 4], [0.1, 0.3, 0.35, 0.5]), new Series("random", [1, 2, 3, 4], [0.05, 0.2, 0.3, 0.32], Dashed: true)]);

        Assert.Equal((Plots.Width, Plots.Height), PngSize(solid.Png));
        string text = SvgText(solid.Svg);
        foreach (string expected in new[] { "Hypervolume", "trial", "hypervolume", "TPE", "random" }) Assert.Contains(expected, text);
        Assert.NotEqual(File.ReadAllText(solid.Svg), File.ReadAllText(dashed.Svg));
        Assert.NotEqual(File.ReadAllBytes(solid.Png), File.ReadAllBytes(dashed.Png));
    }

    [Fact]
    public void Lines_RejectsSeriesWithUnequalLengths() =>
        Assert.Throws<ArgumentException>(() => Plots.Lines(Path.Combine(folder, "bad"), "t", "x", "y", [new Series("s", [1, 2], [1])]));

    [Fact]
    public void GroupedBars_ShowsCategoriesAndOneLegendEntryPerBarSeries()
    {
        string[] categories = ["conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "layer2.0.conv2", "layer3.0.conv1"];
        var files = Plots.GroupedBars(Path.Combine(folder, "bars"), "Kept filters", "filters", categories,
            [("original", [16, 16, 16, 32, 32, 64]), ("model A", [12, 10, 16, 20, 32, 40]), ("model B", [8, 6, 12, 14, 20, 30])]);

        Assert.Equal((Plots.Width, Plots.Height), PngSize(files.Png));
        string text = SvgText(files.Svg);
        foreach (string expected in categories.Concat(["Kept filters", "filters", "original", "model A", "model B"]))
            Assert.Contains(expected, text);
        Assert.Throws<ArgumentException>(() => Plots.GroupedBars(Path.Combine(folder, "bad"), "t", "y", ["a", "b"], [("s", [1.0])]));
    }

    [Fact]
    public void Plots_AreDeterministic()
    {
        var a = Plots.ParetoScatter(Path.Combine(folder, "a"), "t", "x", "y", AllRoles, [new ReferenceLine(0.85, false, "bound")], logX: true);
        var b = Plots.ParetoScatter(Path.Combine(folder, "b"), "t", "x", "y", AllRoles, [new ReferenceLine(0.85, false, "bound")], logX: true);

        Assert.Equal(File.ReadAllBytes(a.Png), File.ReadAllBytes(b.Png));
        Assert.Equal(File.ReadAllText(a.Svg), File.ReadAllText(b.Svg));
    }

    [Fact]
    public void Plots_RenderTextInThePng()
    {
        // The SVG keeps its <text> elements even where no font could be loaded; the PNG then silently has none.
        // The title is the only thing drawn above the data area, so there its letters are the only dark pixels.
        var files = Plots.Lines(Path.Combine(folder, "titled"), "A TITLE WITH MANY LETTERS", "x", "y", [new Series("s", [1, 2], [1, 2])]);

        using var bitmap = SKBitmap.Decode(files.Png);
        Assert.Equal((Plots.Width, Plots.Height), (bitmap.Width, bitmap.Height));
        int dark = 0;
        for (int y = 0; y < 30; y++)
            for (int x = 0; x < bitmap.Width; x++)
                if (bitmap.GetPixel(x, y) is var c && c.Red + c.Green + c.Blue < 3 * 128) dark++;
        Assert.True(dark > 200, $"only {dark} dark pixels where the title should be");
    }

    // ---- HTML ----

    [Fact]
    public void Html_EscapesEverythingAndEmbedsTheSvgInline()
    {
        var plot = Plots.ParetoScatter(Path.Combine(folder, "plots", "pareto"), "front", "MACs", "accuracy", AllRoles, []);
        string path = Path.Combine(folder, "report.html");
        new HtmlReport("Run <b>&</b> \"x\"")
            .Heading("Results <i>")
            .Paragraph("a < b & c > d")
            .KeyValues([("seed", "42"), ("<key>", "v&v")])
            .Figure(plot, "Pareto <front>")
            .Save(path);

        string html = File.ReadAllText(path);
        Assert.Contains("<title>Run &lt;b&gt;&amp;&lt;/b&gt; &quot;x&quot;</title>", html);
        Assert.DoesNotContain("<b>", html);
        Assert.DoesNotContain("<i>", html);
        Assert.Contains("a &lt; b &amp; c &gt; d", html);
        Assert.Contains("&lt;key&gt;", html);
        Assert.Contains("v&amp;v", html);
        Assert.Contains("Pareto &lt;front&gt;", html);
        Assert.Contains("<svg", html);
        Assert.DoesNotContain("<?xml", html);
        Assert.Contains("href=\"plots/pareto.png\"", html);
        Assert.DoesNotContain("src=\"http", html); // self-contained
        Assert.DoesNotContain("href=\"http", html);
    }

    [Fact]
    public void Html_TableKeepsRowOrderAndCarriesSortKeys()
    {
        string path = Path.Combine(folder, "report.html");
        new HtmlReport("t")
            .Table("Chosen models", ["model", "accuracy", "MACs"],
                [["b", "92.1 %", "4.6 M"], ["a", "90.0 %", "12 M"], ["c", "88.5 %", "800 k"]],
                [[null, 0.921, 4.6e6], [null, 0.90, 12e6], [null, 0.885, 8e5]])
            .Save(path);

        string html = File.ReadAllText(path);
        int b = html.IndexOf("<td>b</td>", StringComparison.Ordinal), a = html.IndexOf("<td>a</td>", StringComparison.Ordinal),
            c = html.IndexOf("<td>c</td>", StringComparison.Ordinal);
        Assert.True(b > 0 && b < a && a < c, "rows are not in the order given");
        Assert.Contains("data-sort=\"4600000\"", html);
        Assert.Contains("data-sort=\"0.921\"", html);
        Assert.Contains("data-sort=\"800000\"", html);
        Assert.Contains("<script>", html);
        Assert.Contains("<caption>Chosen models</caption>", html);
    }

    [Fact]
    public void Html_IsWellFormedWithUniqueIdsAcrossFigures()
    {
        var first = Plots.Lines(Path.Combine(folder, "one"), "one", "x", "y", [new Series("s", [1, 2], [1, 2])]);
        var second = Plots.GroupedBars(Path.Combine(folder, "two"), "two", "y", ["a", "b"], [("s", [1.0, 2.0])]);
        string path = Path.Combine(folder, "out", "report.html");
        new HtmlReport("report")
            .Figure(first, "first").Figure(second, "second")
            .KeyValues([("k", "v")])
            .Table("t", ["h1", "h2"], [["1", "2"], ["3", "4"]])
            .Save(path);

        // Parsing as XML proves every element is closed and properly nested.
        XDocument document;
        using (var reader = XmlReader.Create(path, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore }))
            document = XDocument.Load(reader);
        var elements = document.Descendants().ToList();
        Assert.Equal(2, elements.Count(e => e.Name.LocalName == "svg"));
        Assert.Equal(2, elements.Count(e => e.Name.LocalName == "table"));
        Assert.Equal(2, elements.Count(e => e.Name.LocalName == "figure"));
        var ids = elements.Select(e => (string?)e.Attribute("id")).OfType<string>().ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Contains(elements, e => e.Name.LocalName == "a" && (string?)e.Attribute("href") == "../one.png");
    }

    [Fact]
    public void Html_SaveLeavesNoTemporaryFileAndReplacesAnOldReport()
    {
        string path = Path.Combine(folder, "run", "report.html");
        new HtmlReport("old").Save(path);
        new HtmlReport("new").Paragraph("p").Save(path);

        Assert.Equal(["report.html"], Directory.GetFiles(Path.Combine(folder, "run")).Select(Path.GetFileName));
        Assert.Contains("<title>new</title>", File.ReadAllText(path));
    }

    [Fact]
    public void Html_RejectsRaggedTables()
    {
        Assert.Throws<ArgumentException>(() => new HtmlReport("t").Table("c", ["a", "b"], [["1"]]));
        Assert.Throws<ArgumentException>(() => new HtmlReport("t").Table("c", ["a"], [["1"]], [[1.0, 2.0]]));
        Assert.Throws<ArgumentException>(() => new HtmlReport("t").Table("c", ["a"], [["1"]], []));
    }

    // ---- CSV ----

    [Theory]
    [InlineData("plain", "plain")]
    [InlineData("", "")]
    [InlineData("1.5", "1.5")]
    [InlineData("a,b", "\"a,b\"")]
    [InlineData("say \"hi\"", "\"say \"\"hi\"\"\"")]
    [InlineData("two\nlines", "\"two\nlines\"")]
    [InlineData("cr\rlf", "\"cr\rlf\"")]
    [InlineData(" spaced ", " spaced ")]
    public void Csv_EscapeQuotesOnlyWhereNeeded(string field, string expected) => Assert.Equal(expected, Csv.Escape(field));

    [Fact]
    public void Csv_RoundTripsCommasQuotesAndNewlines()
    {
        string path = Path.Combine(folder, "data", "trials.csv");
        string[] headers = ["trial", "name, with comma", "note"];
        string[][] rows =
        [
            ["0", "a \"quoted\" word", "line one\nline two"],
            ["1", "", "crlf\r\ninside"],
            ["2", "\"", "ünïcødé ✓"],
            ["3", ",", ""],
        ];
        Csv.Write(path, headers, rows);

        var read = Csv.Read(path);
        Assert.Equal(rows.Length + 1, read.Count);
        Assert.Equal(headers, read[0]);
        for (int i = 0; i < rows.Length; i++) Assert.Equal(rows[i], read[i + 1]);
        Assert.Equal(["trials.csv"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Csv_WritesUtf8WithoutBomAndCrlfBetweenRecords()
    {
        string path = Path.Combine(folder, "plain.csv");
        Csv.Write(path, ["a", "b"], [["1", "é"]]);

        byte[] bytes = File.ReadAllBytes(path);
        Assert.Equal(Encoding.UTF8.GetBytes("a,b\r\n1,é\r\n"), bytes);
    }

    [Fact]
    public void Csv_ReadsLfFilesAndAFinalRecordWithoutLineBreak()
    {
        string path = Path.Combine(folder, "lf.csv");
        Directory.CreateDirectory(folder);
        File.WriteAllText(path, "x,y\n1,\"2\n3\"\n,\n4,5");

        var read = Csv.Read(path);
        Assert.Equal(4, read.Count);
        Assert.Equal(["1", "2\n3"], read[1]);
        Assert.Equal(["", ""], read[2]);
        Assert.Equal(["4", "5"], read[3]);
    }

    [Theory]
    [InlineData("a,\"b\n")]      // never closed
    [InlineData("a,\"b\"c\n")]   // text after the closing quote
    [InlineData("a,b\"c\n")]     // quote inside an unquoted field
    public void Csv_RejectsMalformedQuoting(string content)
    {
        string path = Path.Combine(folder, "bad.csv");
        Directory.CreateDirectory(folder);
        File.WriteAllText(path, content);
        Assert.Throws<FormatException>(() => Csv.Read(path));
    }

    [Fact]
    public void Csv_RejectsRowsOfTheWrongWidth() =>
        Assert.Throws<ArgumentException>(() => Csv.Write(Path.Combine(folder, "bad.csv"), ["a", "b"], [["1"]]));

    // ---- helpers ----

    /// <summary>Width and height from the IHDR chunk, after checking the PNG signature.</summary>
    static (int Width, int Height) PngSize(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        Assert.True(bytes.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), "not a PNG");
        Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    /// <summary>The text of every &lt;text&gt; element, after checking that the file parses as XML with an svg root.</summary>
    static List<string> SvgTextElements(string path)
    {
        var document = XDocument.Load(path);
        Assert.Equal("svg", document.Root!.Name.LocalName);
        return document.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToList();
    }

    static string SvgText(string path) => string.Join("\n", SvgTextElements(path));
}
