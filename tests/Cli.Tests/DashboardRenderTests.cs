using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SkiaSharp;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// The dashboard as a person sees it at 1400×1000 in headless Chromium: axes with tick labels and units, a legend, the
/// recommended model marked and the hypervolume against the trial number, at a readable size. Asserted on what the
/// browser rendered (boxes, font sizes, the screenshot's pixels), not only on the DOM.
/// </summary>
public sealed class DashboardRenderTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("dashboard-render-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    const string Measure = """
        (() => {
          const box = e => { const r = e.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
          const texts = sel => [...document.querySelectorAll(sel)].map(e => ({ text: e.textContent, box: box(e) }));
          const front = document.querySelector("svg.front"), hv = document.querySelector("svg.hypervolume");
          return {
            front: box(front), hv: hv ? box(hv) : null,
            xTicks: texts("svg.front .tick.x"), yTicks: texts("svg.front .tick.y"), titles: texts("svg.front .axis-title"),
            legend: texts("svg.front .legend text"), marks: [...document.querySelectorAll("svg.front [data-legend]")].map(e => ({ name: e.dataset.legend, box: box(e) })),
            best: document.querySelectorAll("svg.front circle.best").length,
            hvPoints: document.querySelectorAll("svg.hypervolume .hv-point").length, hvTitles: texts("svg.hypervolume .axis-title"),
            hvXTicks: texts("svg.hypervolume .tick.x").filter(t => t.text.length > 0)
          };
        })()
        """;

    [FactWhenChromiumIsInstalled]
    public async Task TheDashboardShowsAxesALegendTheRecommendedModelAndTheHypervolumeCurveReadably()
    {
        string model = CliRunner.TinyModel(directory), run = Path.Combine(directory, "run");
        var search = await CliRunner.RunAsync(["search", model, "-o", run, "-n", "6", "--objectives", "accuracy,macs", "--constraint", "macs<=0.8*baseline",
                                               .. CliRunner.SearchBudget]);
        Assert.True(search.ExitCode == 0, search.Error);
        using var dashboard = CliRunner.Start("dashboard", run, "--listen", "127.0.0.1:0");
        try
        {
            string? line;
            while ((line = dashboard.StandardOutput.ReadLine()) is not null && !line.Contains("dashboard: ")) { }
            var address = new Uri(Regex.Match(line ?? "", @"http://\S+").Value);
            await using var browser = await DevToolsBrowser.StartAsync(1400, 1000);
            await browser.LoadAsync(address, "document.querySelector('svg.hypervolume') !== null");
            var m = (await browser.EvaluateAsync(Measure))!;
            log.WriteLine(m.ToJsonString());

            (string Text, double X, double Y, double W, double H)[] Texts(string key) =>
                [.. m[key]!.AsArray().Select(t => (t!["text"]!.GetValue<string>(), (double)t["box"]!["x"]!, (double)t["box"]!["y"]!, (double)t["box"]!["w"]!, (double)t["box"]!["h"]!))];
            var xTicks = Texts("xTicks");
            var yTicks = Texts("yTicks");
            // Tick labels: several on each axis, numbers (with SI prefixes on the cost), left to right and bottom to top.
            Assert.InRange(xTicks.Length, 3, 12);
            Assert.InRange(yTicks.Length, 3, 12);
            Assert.All(xTicks, t => Assert.Matches(@"^-?[0-9.]+( [kMG])?$", t.Text));
            Assert.All(yTicks, t => Assert.Matches(@"^[0-9.]+$", t.Text));
            Assert.Equal(xTicks.OrderBy(t => t.X).Select(t => t.Text), xTicks.Select(t => t.Text));
            // Readable at this size: every label between 9 and 20 pixels tall (across the line: the y title is turned), and no
            // two tick labels overlap.
            foreach (var t in xTicks.Concat(yTicks).Concat(Texts("titles")).Concat(Texts("legend")))
                Assert.True(Math.Min(t.W, t.H) is >= 9 and <= 20, $"'{t.Text}' is rendered {Math.Min(t.W, t.H):0.0} px tall");
            for (int i = 1; i < xTicks.Length; i++)
                Assert.True(xTicks[i].X >= xTicks[i - 1].X + xTicks[i - 1].W, $"tick labels '{xTicks[i - 1].Text}' and '{xTicks[i].Text}' overlap");
            // Axis titles with units, and the legend.
            Assert.Equal(["macs (MACs)", "accuracy (%)"], Texts("titles").Select(t => t.Text).OrderByDescending(t => t.StartsWith("macs")));
            Assert.Equal(["screening", "promotion", "final", "on the front", "recommended", "unpruned"], Texts("legend").Select(t => t.Text));
            Assert.Equal(1, (int)m["best"]!);
            // The hypervolume against the trial number: one point per screened trial, with its axes.
            Assert.Equal(6, (int)m["hvPoints"]!);
            Assert.Equal(["trials screened", "hypervolume"], Texts("hvTitles").Select(t => t.Text));
            Assert.Equal(["1", "2", "3", "4", "5", "6"], Texts("hvXTicks").Select(t => t.Text));

            // The screenshot: the legend's marks are drawn in their colours where the page says they are.
            byte[] png = await browser.ScreenshotAsync();
            File.WriteAllBytes(Path.Combine(directory, "dashboard.png"), png);
            using var bitmap = SKBitmap.Decode(png);
            Assert.Equal((1400, 1000), (bitmap.Width, bitmap.Height));
            int Coloured(string name, Func<SKColor, bool> like)
            {
                var box = m["marks"]!.AsArray().Single(x => (string?)x!["name"] == name)!["box"]!;
                int count = 0;
                for (int x = (int)(double)box["x"]!; x <= (int)((double)box["x"]! + (double)box["w"]!); x++)
                    for (int y = (int)(double)box["y"]!; y <= (int)((double)box["y"]! + (double)box["h"]!); y++)
                        if (x < bitmap.Width && y < bitmap.Height && like(bitmap.GetPixel(x, y))) count++;
                return count;
            }
            Assert.True(Coloured("recommended", c => c.Red > 180 && c.Green < 90 && c.Blue < 90) >= 8, "the legend's recommended mark is not drawn red");
            Assert.True(Coloured("on the front", c => c.Blue > 140 && c.Red < 90) >= 8, "the legend's front mark is not drawn blue");
        }
        finally
        {
            if (!dashboard.HasExited) dashboard.Kill(true);
            dashboard.WaitForExit(10_000);
        }
    }
}
