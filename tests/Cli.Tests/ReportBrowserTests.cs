using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// A search's report.html in a real headless browser (Debian's chromium): its script runs without errors, the
/// recommendation card is there, and clicking a header sorts a table by value with empty cells last either way.
/// The page is the report as written, with two test hooks added: one records script errors, one clicks the
/// headers and writes what it saw into the page, which chromium's --dump-dom hands back.
/// </summary>
public sealed partial class ReportBrowserTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("report-browser-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    const string ErrorHook = """
        <script>window.__errors = []; window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });</script>
        """;

    // Clicks a header of the "All trials" table (the last sortable one) twice and records each column's cells in row order.
    const string SortHook = """
        <script>
        (function () {
          var result = { errors: window.__errors, sorts: {} };
          try {
            var tables = document.querySelectorAll("table.sortable");
            var table = tables[tables.length - 1];
            var headers = Array.prototype.slice.call(table.querySelectorAll("thead th"));
            ["trial", "accuracy (final)"].forEach(function (name) {
              var column = headers.findIndex(function (h) { return h.textContent.trim() === name; });
              var seen = [];
              for (var i = 0; i !== 2; i++) {
                headers[column].click();
                seen.push(Array.prototype.slice.call(table.tBodies[0].rows).map(function (r) { return r.cells[column].textContent.trim(); }));
              }
              result.sorts[name] = seen;
            });
          } catch (e) { result.errors.push(String(e)); }
          var pre = document.createElement("pre");
          pre.id = "test-result";
          pre.textContent = JSON.stringify(result);
          document.body.appendChild(pre);
        })();
        </script>
        """;

    [FactWhenChromiumIsInstalled]
    public async Task TheReportRunsInABrowserWithoutErrorsAndSortsEmptyCellsLast()
    {
        string run = Path.Combine(directory, "run");
        var search = await CliRunner.RunAsync(["search", "--model", CliRunner.TinyModel(directory), "--out", run, "--trials", "6", "--sampler", "random",
                                               "--objectives", "accuracy,macs,energy", .. CliRunner.SearchBudget]);
        Assert.True(search.ExitCode == 0, search.Error);
        string html = File.ReadAllText(Path.Combine(run, "report.html"));
        Assert.Contains("Recommended model", html);
        Assert.Contains("paretoprune export", html);
        Assert.Contains("PrunedClassifier.Load", html);

        string page = Path.Combine(run, "report-under-test.html");
        File.WriteAllText(page, html.Replace("<head>", "<head>" + ErrorHook).Replace("</body>", SortHook + "</body>"));
        var dom = DumpDom(new Uri(page).AbsoluteUri);
        var match = TestResult().Match(dom);
        Assert.True(match.Success, $"the page's test hook wrote nothing; chromium gave:\n{dom[..Math.Min(dom.Length, 2000)]}");
        var result = JsonDocument.Parse(System.Net.WebUtility.HtmlDecode(match.Groups[1].Value)).RootElement;
        Assert.Empty(result.GetProperty("errors").EnumerateArray());

        string[][] Sorted(string column) => result.GetProperty("sorts").GetProperty(column).EnumerateArray()
            .Select(a => a.EnumerateArray().Select(c => c.GetString()!).ToArray()).ToArray();
        var trial = Sorted("trial");
        Assert.Equal(Enumerable.Range(0, 6).Select(n => n.ToString()), trial[0]);          // ascending by number
        Assert.Equal(Enumerable.Range(0, 6).Reverse().Select(n => n.ToString()), trial[1]); // then descending

        // Final accuracy exists for few trials: by value in either direction, the empty cells after them both times.
        var final = Sorted("accuracy (final)");
        static double Percent(string cell) => double.Parse(cell.TrimEnd('%', ' '), System.Globalization.CultureInfo.InvariantCulture);
        foreach (var (cells, ascending) in new[] { (final[0], true), (final[1], false) })
        {
            var filled = cells.TakeWhile(c => c.Length > 0).ToList();
            Assert.NotEmpty(filled);
            Assert.All(cells.Skip(filled.Count), c => Assert.Equal("", c));
            var values = filled.Select(Percent).ToList();
            Assert.Equal(ascending ? values.Order() : values.OrderDescending(), values);
        }
    }

    /// <summary>The page at <paramref name="url"/> after its scripts ran (up to 5 s of virtual time), as headless Chromium serialises it.</summary>
    internal static string DumpDom(string url)
    {
        var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--allow-file-access-from-files",
                                       "--virtual-time-budget=5000", "--dump-dom", url })
            start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEndAsync();
        string dom = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(60_000)) { process.Kill(true); throw new TimeoutException("chromium did not finish in a minute"); }
        Assert.True(process.ExitCode == 0, $"chromium exited {process.ExitCode}: {errors.Result}");
        return dom;
    }

    [GeneratedRegex("<pre id=\"test-result\">(.*?)</pre>", RegexOptions.Singleline)]
    private static partial Regex TestResult();
}

/// <summary>A fact reported as skipped, with the reason, where Debian's chromium is not installed
/// (<c>tools/install-debian-packages.sh</c> installs it; <c>.ci/run</c> runs that first).</summary>
public sealed class FactWhenChromiumIsInstalledAttribute : FactAttribute
{
    public FactWhenChromiumIsInstalledAttribute()
    {
        bool found = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => File.Exists(Path.Combine(d, "chromium")));
        // CI installs chromium (tools/install-debian-packages.sh) and sets PARETOPRUNE_REQUIRE_CHROMIUM=1: there the browser
        // tests run, and fail without it, rather than skip in silence.
        if (!found && Environment.GetEnvironmentVariable("PARETOPRUNE_REQUIRE_CHROMIUM") != "1")
            Skip = "chromium is not installed (tools/install-debian-packages.sh installs it)";
    }
}
