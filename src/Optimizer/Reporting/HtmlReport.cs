using System.Globalization;
using System.Text;
using System.Xml;
using System.Xml.Linq;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>
/// Builds one self-contained HTML page: CSS and the sorting script inline, plots embedded as inline SVG (so the
/// file still shows everything when moved or mailed), each with a link to its PNG. All text given is escaped.
/// The page is also well-formed XML, which keeps it checkable by any XML parser.
/// </summary>
public sealed class HtmlReport
{
    readonly string title;
    // A block's markup can depend on the folder the report is saved in (links to the PNGs), known only at Save.
    readonly List<Func<string, string>> blocks = [];
    int figures;

    public HtmlReport(string title) => this.title = title;

    public HtmlReport Heading(string text) => Add($"<h2>{Escape(text)}</h2>");

    public HtmlReport Paragraph(string text) => Add($"<p>{Escape(text)}</p>");

    /// <summary>Text to copy: a command, a code snippet.</summary>
    public HtmlReport Code(string caption, string code) =>
        Add($"<figure class=\"code\"><figcaption>{Escape(caption)}</figcaption><pre><code>{Escape(code)}</code></pre></figure>");

    /// <summary>A boxed section at the top of the page: what a reader came for, before the details.</summary>
    public HtmlReport Card(string heading, Action<HtmlReport> content)
    {
        Add($"<section class=\"card\"><h2>{Escape(heading)}</h2>");
        content(this);
        return Add("</section>");
    }

    /// <summary>A two-column table of settings or results.</summary>
    public HtmlReport KeyValues(IReadOnlyList<(string Key, string Value)> rows)
    {
        var html = new StringBuilder("<table class=\"kv\"><tbody>");
        foreach (var (key, value) in rows) html.Append($"<tr><th scope=\"row\">{Escape(key)}</th><td>{Escape(value)}</td></tr>");
        return Add(html.Append("</tbody></table>").ToString());
    }

    /// <summary>The plot's SVG inline (read now), the caption, and a link to the PNG relative to the saved report.</summary>
    public HtmlReport Figure(PlotFiles plot, string caption)
    {
        string svg = InlineSvg(plot.Svg, $"fig{++figures}-");
        string png = Path.GetFullPath(plot.Png);
        return Add(folder =>
            $"<figure>{svg}<figcaption>{Escape(caption)} <a href=\"{Escape(RelativeUrl(folder, png))}\">PNG</a></figcaption></figure>");
    }

    /// <summary>
    /// A table sortable by clicking a header. <paramref name="sortKeys"/>, one array per row with one entry per
    /// column, gives the numbers to sort by (so "92.1 %" or "4.6 M" sort by value); a null entry sorts by the text.
    /// </summary>
    public HtmlReport Table(string caption, IReadOnlyList<string> headers, IReadOnlyList<IReadOnlyList<string>> rows,
                            IReadOnlyList<double?[]>? sortKeys = null)
    {
        if (sortKeys is not null && sortKeys.Count != rows.Count)
            throw new ArgumentException($"{sortKeys.Count} sort-key rows for {rows.Count} rows", nameof(sortKeys));
        for (int r = 0; r < rows.Count; r++)
        {
            if (rows[r].Count != headers.Count)
                throw new ArgumentException($"table '{caption}': row {r + 1} has {rows[r].Count} cells for {headers.Count} columns", nameof(rows));
            if (sortKeys is not null && sortKeys[r].Length != headers.Count)
                throw new ArgumentException($"table '{caption}': row {r + 1} has {sortKeys[r].Length} sort keys for {headers.Count} columns", nameof(sortKeys));
        }
        bool[] numeric = Enumerable.Range(0, headers.Count).Select(c => sortKeys?.Any(k => k[c] is not null) ?? false).ToArray();

        var html = new StringBuilder("<div class=\"scroll\"><table class=\"sortable\">");
        html.Append($"<caption>{Escape(caption)}</caption><thead><tr>");
        for (int c = 0; c < headers.Count; c++)
            html.Append($"<th scope=\"col\"{(numeric[c] ? " class=\"num\"" : "")} title=\"Sort\">{Escape(headers[c])}</th>");
        html.Append("</tr></thead><tbody>");
        for (int r = 0; r < rows.Count; r++)
        {
            html.Append("<tr>");
            for (int c = 0; c < headers.Count; c++)
            {
                double? key = sortKeys?[r][c];
                string attributes = (numeric[c] ? " class=\"num\"" : "") + (key is { } k ? $" data-sort=\"{SortKey(k)}\"" : "");
                html.Append($"<td{attributes}>{Escape(rows[r][c])}</td>");
            }
            html.Append("</tr>");
        }
        return Add(html.Append("</tbody></table></div>").ToString());
    }

    /// <summary>Writes the page atomically (UTF-8, no BOM); links to PNGs are made relative to its folder.</summary>
    public void Save(string path)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var html = new StringBuilder();
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n")
            .Append($"<title>{Escape(title)}</title>\n<style>{Style}</style>\n</head>\n<body>\n<h1>{Escape(title)}</h1>\n");
        foreach (var block in blocks) html.Append(block(folder)).Append('\n');
        html.Append($"<script>{Script}</script>\n</body>\n</html>\n");
        AtomicFile.WriteAllText(path, html.ToString());
    }

    HtmlReport Add(string html) => Add(_ => html);

    HtmlReport Add(Func<string, string> block)
    {
        blocks.Add(block);
        return this;
    }

    /// <summary>Escapes text for element content and quoted attribute values alike.</summary>
    static string Escape(string text) =>
        text.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;").Replace("'", "&#39;");

    /// <summary>What JavaScript's parseFloat reads back ("R" would print infinity as ∞); NaN sorts as 0.</summary>
    static string SortKey(double value) => value switch
    {
        double.PositiveInfinity => "Infinity",
        double.NegativeInfinity => "-Infinity",
        double.NaN => "0",
        _ => value.ToString("R", CultureInfo.InvariantCulture),
    };

    static string RelativeUrl(string folder, string file) =>
        string.Join('/', Path.GetRelativePath(folder, file).Split(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)
                             .Select(segment => segment == ".." ? segment : Uri.EscapeDataString(segment)));

    /// <summary>
    /// The SVG's root element without XML prolog. Its ids (clip paths) get a per-figure prefix: every inline SVG
    /// shares the page's id space, and ScottPlot's SVGs all use the same ids, so the second figure would otherwise
    /// be clipped by the first one's paths. Width and height give way to the viewBox so the figure scales.
    /// </summary>
    static string InlineSvg(string svgPath, string idPrefix)
    {
        XDocument document;
        using (var reader = XmlReader.Create(svgPath, new XmlReaderSettings { DtdProcessing = DtdProcessing.Ignore, XmlResolver = null }))
            document = XDocument.Load(reader);
        XElement root = document.Root ?? throw new InvalidDataException($"{svgPath} has no root element");
        if (root.Name.LocalName != "svg") throw new InvalidDataException($"{svgPath} is not an SVG image (root <{root.Name.LocalName}>)");

        foreach (var element in root.DescendantsAndSelf())
            foreach (var attribute in element.Attributes())
            {
                if (attribute.IsNamespaceDeclaration) continue;
                if (attribute.Name.LocalName == "id") attribute.Value = idPrefix + attribute.Value;
                else if (attribute.Name.LocalName == "href" && attribute.Value.StartsWith('#')) attribute.Value = "#" + idPrefix + attribute.Value[1..];
                else if (attribute.Value.Contains("url(#", StringComparison.Ordinal)) attribute.Value = attribute.Value.Replace("url(#", "url(#" + idPrefix);
            }
        if (root.Attribute("viewBox") is null && TryParse(root.Attribute("width"), out double w) && TryParse(root.Attribute("height"), out double h))
            root.SetAttributeValue("viewBox", FormattableString.Invariant($"0 0 {w} {h}"));
        if (root.Attribute("viewBox") is not null)
        {
            root.SetAttributeValue("width", null);
            root.SetAttributeValue("height", null);
        }
        root.SetAttributeValue("role", "img");
        return root.ToString(SaveOptions.DisableFormatting | SaveOptions.OmitDuplicateNamespaces);
    }

    static bool TryParse(XAttribute? attribute, out double value)
    {
        value = 0;
        return attribute is not null
            && double.TryParse(attribute.Value.EndsWith("px", StringComparison.Ordinal) ? attribute.Value[..^2] : attribute.Value,
                               NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    // Kept free of '<' and '&' so that the page stays well-formed XML.
    const string Style = """
        body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 2rem auto; max-width: 1000px; padding: 0 1rem; color: #222; line-height: 1.45; }
        h1 { font-size: 1.6rem; margin-bottom: 0.5rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
        table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
        th, td { border: 1px solid #ddd; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
        thead th { background: #f3f3f3; position: sticky; top: 0; }
        table.kv th { background: #fafafa; font-weight: 600; }
        .num { text-align: right; font-variant-numeric: tabular-nums; }
        caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3rem 0; }
        table.sortable thead th { cursor: pointer; user-select: none; }
        table.sortable thead th::after { content: " \2195"; color: #aaa; }
        table.sortable thead th[aria-sort="ascending"]::after { content: " \25B2"; color: #333; }
        table.sortable thead th[aria-sort="descending"]::after { content: " \25BC"; color: #333; }
        tbody tr:nth-child(even) { background: #fafafa; }
        .scroll { overflow-x: auto; }
        figure { margin: 1.2rem 0; } figure svg { width: 100%; height: auto; max-width: 800px; display: block; }
        figcaption { font-size: 0.9rem; color: #555; }
        section.card { border: 2px solid #1f77b4; border-radius: 8px; padding: 0.2rem 1.2rem 0.8rem; margin: 1rem 0 2rem; background: #f7fbff; }
        section.card h2 { margin-top: 0.8rem; border: none; }
        pre { background: #f3f3f3; padding: 0.6rem 0.8rem; overflow-x: auto; font-size: 0.85rem; margin: 0.3rem 0; }
        figure.code { margin: 0.8rem 0; }
        """;

    // Sorts a table by the clicked column: cells with a data-sort number first, by it; then other text (numeric-aware);
    // empty cells last whichever the direction. Written without '<' and '&' (see Style).
    const string Script = """

        function ppSortKey(cell) { var k = cell.getAttribute("data-sort"); return k === null ? null : parseFloat(k); }
        function ppGroup(cell) { return ppSortKey(cell) !== null ? 0 : (cell.textContent.trim() === "" ? 2 : 1); }
        function ppCompare(a, b) {
          var x = ppSortKey(a), y = ppSortKey(b);
          if (x !== null) { return x === y ? 0 : (x > y ? 1 : -1); }
          return a.textContent.trim().localeCompare(b.textContent.trim(), undefined, { numeric: true });
        }
        document.querySelectorAll("table.sortable").forEach(function (table) {
          var headers = table.querySelectorAll("thead th");
          headers.forEach(function (th, column) {
            th.addEventListener("click", function () {
              var ascending = th.getAttribute("aria-sort") !== "ascending";
              headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
              th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
              var body = table.tBodies[0];
              var rows = Array.prototype.slice.call(body.rows);
              rows.sort(function (r1, r2) {
                var a = r1.cells[column], b = r2.cells[column], g = ppGroup(a) - ppGroup(b);
                if (g !== 0) { return g; }  // numbers, then text, then empty cells, in either direction
                var c = ppCompare(a, b);
                return ascending ? c : -c;
              });
              rows.forEach(function (row) { body.appendChild(row); });
            });
          });
        });

        """;
}
