using System.Diagnostics;
using System.Text.RegularExpressions;

namespace ParetoPrune.Cli.Tests;

/// <summary><c>paretoprune dashboard</c> end to end: a real search process, the dashboard process on loopback, and the page
/// loaded in headless Chromium while the search runs and after it finished, beside a run that has not started.</summary>
public sealed partial class DashboardTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("dashboard-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    static string ReadUntil(Process process, string marker)
    {
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null)
            if (line.Contains(marker)) return line;
        throw new InvalidOperationException($"the process ended before printing '{marker}'");
    }

    /// <summary>The page after its script ran: the studies it drew, each as (status, trials, rows, progress texts).</summary>
    static (string Dom, List<(string Status, int Trials, int Rows, string Text)> Studies) Load(Uri page)
    {
        string dom = ReportBrowserTests.DumpDom(page.AbsoluteUri);
        var studies = Study().Matches(dom).Select(m => (m.Groups[1].Value, int.Parse(m.Groups[2].Value),
                                                         Row().Matches(m.Groups[3].Value).Count, m.Groups[3].Value)).ToList();
        return (dom, studies);
    }

    [FactWhenChromiumIsInstalled]
    public void TheDashboardFollowsARunningSearchBesideAnotherStudy()
    {
        string model = CliRunner.TinyModel(directory), run = Path.Combine(directory, "run"), later = Path.Combine(directory, "later");
        using var search = CliRunner.Start("search", model, "-o", run, "-n", "8", "--sampler", "random", "-d", "fashion-mnist-sample", "--validation-limit", "200",
                                 "--recalibration-batches", "2", "--batch-size", "32", "--threads", "1", "--screening-steps", "40",
                                 "--promote", "2", "--promotion-steps", "40", "--final", "2", "--final-max-steps-per-epoch", "40");
        using var dashboard = CliRunner.Start("dashboard", run, later, "--listen", "127.0.0.1:0");
        try
        {
            var address = new Uri(Regex.Match(ReadUntil(dashboard, "dashboard: "), @"http://\S+").Value);
            ReadUntil(search, "screening 1/");
            var (during, running) = Load(address);
            Assert.Contains("data-updates=\"", during); // drawn by the page's script from /api/studies
            Assert.Equal(2, running.Count);             // both studies, side by side
            Assert.Equal("running", running[0].Status);
            Assert.InRange(running[0].Trials, 1, 8);
            Assert.Equal(running[0].Trials, running[0].Rows);
            Assert.Contains("no study yet", running[1].Text);
            Assert.Matches(@"<div id=""errors""></div>", during);

            Assert.True(search.WaitForExit(120_000), "the search did not finish in two minutes");
            Assert.Equal(0, search.ExitCode);
            var (after, finished) = Load(address);
            Assert.Equal("finished", finished[0].Status);
            Assert.Equal((8, 8), (finished[0].Trials, finished[0].Rows));
            Assert.Contains("final 2/2", finished[0].Text);
            Assert.Contains("best under the constraints: trial", finished[0].Text);
            Assert.Matches(@"<div id=""errors""></div>", after);
        }
        finally
        {
            foreach (var p in new[] { search, dashboard })
                if (!p.HasExited) { p.Kill(true); p.WaitForExit(10_000); }
        }
    }

    [GeneratedRegex(@"<section class=""study"" data-status=""(\w+)"" data-trials=""(\d+)"">(.*?)</section>", RegexOptions.Singleline)]
    private static partial Regex Study();

    [GeneratedRegex(@"<tr data-trial=")]
    private static partial Regex Row();
}
