using System.Globalization;
using System.Text.RegularExpressions;
using ScottPlot;
using SkiaSharp;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>How a point of a Pareto scatter is drawn; each role present gets one legend entry.</summary>
public enum PointRole { Dominated, Infeasible, Front, Chosen, Baseline, Screened, Promoted }

/// <summary>A point of a Pareto scatter; <paramref name="Label"/>, where given, is drawn next to it.</summary>
public sealed record PlotPoint(double X, double Y, PointRole Role, string? Label = null);

/// <summary>A constraint bound drawn as a dashed line: vertical at X = Value, or horizontal at Y = Value.</summary>
public sealed record ReferenceLine(double Value, bool Vertical, string Label);

public sealed record Series(string Label, IReadOnlyList<double> X, IReadOnlyList<double> Y, bool Dashed = false);

public sealed record PlotFiles(string Png, string Svg);

/// <summary>
/// The report's plots, each written as PNG and SVG of the same figure (<see cref="Width"/> × <see cref="Height"/>).
/// Rendering is deterministic: colours come from a fixed palette by position, never from ScottPlot's running colour
/// counter, and the SVG's ids are renumbered. Text uses the embedded DejaVu Sans, so no font
/// needs to be installed.
/// </summary>
public static partial class Plots
{
    public const int Width = 800, Height = 600;

    // Category10: colour-blind-friendlier than ScottPlot's default and the de-facto standard of matplotlib figures.
    static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    static readonly string[] RoleLegend = ["dominated", "infeasible", "Pareto front", "chosen (fine-tuned)", "baseline", "screened", "promoted"];

    // Back to front: low-fidelity clouds first, so that the front, chosen models and baseline stay visible.
    static readonly PointRole[] DrawingOrder = [PointRole.Screened, PointRole.Promoted, PointRole.Dominated, PointRole.Infeasible,
                                                PointRole.Front, PointRole.Chosen, PointRole.Baseline];

    // The Linux Skia that ScottPlot brings (SkiaSharp.NativeAssets.Linux.NoDependencies) has no fontconfig: it reads
    // the font files under /usr/share/fonts/ itself, and with none there (a bare Debian) every text is silently left
    // out. So the plots carry their own font: DejaVu Sans (free licence, Fonts/LICENSE), embedded in this assembly and
    // registered with ScottPlot by file. Plots then also look the same on every machine.
    const string FontFamilyName = "ParetoPrune Sans"; // a name no system font has: text can only come from the embedded file

    static Plots()
    {
        string directory = Path.Combine(Path.GetTempPath(), $"paretoprune-fonts-{typeof(Plots).Assembly.GetName().Version}");
        Directory.CreateDirectory(directory);
        foreach (var (resource, bold) in new[] { ("DejaVuSans.ttf", false), ("DejaVuSans-Bold.ttf", true) })
        {
            string path = Path.Combine(directory, resource);
            if (!File.Exists(path))
            {
                using var stream = typeof(Plots).Assembly.GetManifestResourceStream($"ParetoPrune.Fonts.{resource}")
                                   ?? throw new InvalidOperationException($"the font {resource} is not embedded in this build");
                string temporary = path + $".{Environment.ProcessId}.tmp";
                using (var file = File.Create(temporary)) stream.CopyTo(file);
                File.Move(temporary, path, overwrite: true);
            }
            Fonts.AddFontFile(FontFamilyName, path, bold, italic: false);
        }
        Fonts.Default = FontFamilyName;
        using var typeface = SKTypeface.FromFile(Path.Combine(directory, "DejaVuSans.ttf"));
        if (typeface is null || typeface.GlyphCount == 0)
            throw new InvalidOperationException($"the embedded font {FontFamilyName} could not be loaded, so plots would have no text");
    }

    /// <summary>
    /// Objective space of a search: dominated points grey, infeasible red ×, the front connected by a step line
    /// (sorted by X), chosen models as stars, the baseline as a black diamond, lower-fidelity points (screened, promoted)
    /// hollow; <paramref name="lines"/> are the constraint bounds. <paramref name="logX"/> plots X on a log10 scale (X and
    /// vertical lines must then be positive). <paramref name="legends"/> replaces the default legend text of a role.
    /// </summary>
    public static PlotFiles ParetoScatter(string path, string title, string xLabel, string yLabel, IReadOnlyList<PlotPoint> points,
                                          IReadOnlyList<ReferenceLine> lines, bool logX = false, IReadOnlyDictionary<PointRole, string>? legends = null,
                                          string? subtitle = null)
    {
        if (logX)
        {
            double bad = points.Select(p => p.X).Concat(lines.Where(l => l.Vertical).Select(l => l.Value)).FirstOrDefault(x => !(x > 0), 1);
            if (!(bad > 0))
                throw new ArgumentException($"a log X axis needs positive X values; got {bad.ToString(CultureInfo.InvariantCulture)}");
        }
        double Tx(double x) => logX ? Math.Log10(x) : x;

        using var plot = NewPlot(title, xLabel, yLabel, subtitle);
        foreach (PointRole role in DrawingOrder)
        {
            var members = points.Where(p => p.Role == role).ToList();
            if (members.Count == 0) continue;
            if (role == PointRole.Front) members = members.OrderBy(p => p.X).ThenBy(p => p.Y).ToList();
            double[] xs = members.Select(p => Tx(p.X)).ToArray(), ys = members.Select(p => p.Y).ToArray();
            string legend = legends?.GetValueOrDefault(role) ?? RoleLegend[(int)role];
            switch (role)
            {
                case PointRole.Screened:
                    OutlineMarkers(plot, xs, ys, MarkerShape.OpenCircle, 6, Colors.Gray, 1, legend);
                    break;
                case PointRole.Promoted:
                    OutlineMarkers(plot, xs, ys, MarkerShape.OpenSquare, 7, Palette.GetColor(2), 1.2f, legend);
                    break;
                case PointRole.Dominated:
                    plot.Add.Markers(xs, ys, MarkerShape.FilledCircle, 6, Colors.Gray.WithAlpha(0.55)).LegendText = legend;
                    break;
                case PointRole.Infeasible:
                    OutlineMarkers(plot, xs, ys, MarkerShape.Eks, 8, Colors.Red, 1.5f, legend);
                    break;
                case PointRole.Front:
                    // Step line: between two front points the better of them is what is attainable (attainment surface).
                    var front = plot.Add.Scatter(xs, ys, Palette.GetColor(0));
                    front.ConnectStyle = ConnectStyle.StepHorizontal;
                    front.LineWidth = 1.5f;
                    front.MarkerShape = MarkerShape.FilledCircle;
                    front.MarkerSize = 7;
                    front.LegendText = legend;
                    break;
                case PointRole.Chosen:
                    var chosen = plot.Add.Markers(xs, ys, MarkerShape.FilledCircle, 18, Palette.GetColor(1));
                    chosen.MarkerStyle.CustomRenderer = new StarMarker();
                    chosen.MarkerStyle.OutlineColor = Colors.Black;
                    chosen.MarkerStyle.OutlineWidth = 1;
                    chosen.LegendText = legend;
                    break;
                case PointRole.Baseline:
                    plot.Add.Markers(xs, ys, MarkerShape.FilledDiamond, 12, Colors.Black).LegendText = legend;
                    break;
            }
        }
        for (int i = 0; i < lines.Count; i++)
        {
            var l = lines[i];
            // Palette from index 4 (purple, brown, ...): distinct from the front (blue), chosen (orange) and infeasible (red).
            var color = Palette.GetColor(4 + i);
            ScottPlot.Plottables.AxisLine axisLine = l.Vertical
                ? plot.Add.VerticalLine(Tx(l.Value), 1.5f, color, LinePattern.Dashed)
                : plot.Add.HorizontalLine(l.Value, 1.5f, color, LinePattern.Dashed);
            axisLine.LegendText = l.Label;
        }
        if (logX) plot.Axes.Bottom.TickGenerator = new Log10Ticks();
        AddPointLabels(plot, points.Where(p => !string.IsNullOrEmpty(p.Label))
                                   .Select(p => (Tx(p.X), p.Y, p.Label!)).ToList());
        return Save(plot, path);
    }

    /// <summary>One line with markers per series (e.g. hypervolume per trial, one line per sampler).</summary>
    public static PlotFiles Lines(string path, string title, string xLabel, string yLabel, IReadOnlyList<Series> series)
    {
        using var plot = NewPlot(title, xLabel, yLabel);
        foreach (var s in series)
            if (s.X.Count != s.Y.Count)
                throw new ArgumentException($"series '{s.Label}' has {s.X.Count} X values but {s.Y.Count} Y values");
        // Markers first, dashed lines last: ScottPlot leaves a dashed line's dash effect on the paint it shares with
        // the plottables drawn next, and Skia's SVG writer, unable to dash a circle, says so on stderr per marker.
        for (int i = 0; i < series.Count; i++)
            plot.Add.Markers(series[i].X.ToArray(), series[i].Y.ToArray(), MarkerShape.FilledCircle, 6, Palette.GetColor(i));
        foreach (bool dashed in new[] { false, true })
            for (int i = 0; i < series.Count; i++)
            {
                if (series[i].Dashed != dashed) continue;
                var line = plot.Add.ScatterLine(series[i].X.ToArray(), series[i].Y.ToArray(), Palette.GetColor(i));
                line.LineWidth = 2;
                line.MarkerSize = 0;
                if (dashed) line.LinePattern = LinePattern.Dashed;
            }
        // Legend in the caller's order, whatever the drawing order.
        for (int i = 0; i < series.Count; i++)
            plot.Legend.ManualItems.Add(new LegendItem
            {
                LabelText = series[i].Label, LineColor = Palette.GetColor(i), LineWidth = 2,
                LinePattern = series[i].Dashed ? LinePattern.Dashed : LinePattern.Solid,
            });
        // Trial numbers, epochs: no 2.5th trial on the axis.
        if (series.SelectMany(s => s.X).All(x => x == Math.Round(x)))
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = Si, IntegerTicksOnly = true };
        return Save(plot, path);
    }

    /// <summary>
    /// One group of bars per category, one bar per entry of <paramref name="bars"/> in each group
    /// (e.g. categories = layer groups, bars = "original" and each chosen model's kept filters).
    /// </summary>
    public static PlotFiles GroupedBars(string path, string title, string yLabel, IReadOnlyList<string> categories,
                                        IReadOnlyList<(string Label, IReadOnlyList<double> Values)> bars, string xLabel = "")
    {
        using var plot = NewPlot(title, xLabel, yLabel);
        double width = 0.8 / Math.Max(1, bars.Count);
        for (int s = 0; s < bars.Count; s++)
        {
            var (label, values) = bars[s];
            if (values.Count != categories.Count)
                throw new ArgumentException($"bar series '{label}' has {values.Count} values for {categories.Count} categories");
            double offset = (s - (bars.Count - 1) / 2.0) * width;
            var barList = values.Select((v, c) => new Bar { Position = c + offset, Value = v, Size = width, LineWidth = 0 }).ToList();
            var barPlot = plot.Add.Bars(barList);
            barPlot.Color = Palette.GetColor(s);
            barPlot.LegendText = label;
        }
        var ticks = new ScottPlot.TickGenerators.NumericManual(
            Enumerable.Range(0, categories.Count).Select(c => (double)c).ToArray(), categories.ToArray());
        plot.Axes.Bottom.TickGenerator = ticks;
        plot.Axes.Bottom.MajorTickStyle.Length = 0;
        plot.Grid.XAxisStyle.IsVisible = false;
        // Layer names are long: slant them when they would not fit side by side.
        using (var paint = Paint.NewDisposablePaint())
        {
            var style = plot.Axes.Bottom.TickLabelStyle;
            float widest = categories.Count == 0 ? 0 : categories.Max(c => style.Measure(c, paint).Size.Width);
            if (categories.Count * (widest + 8) > Width * 0.7)
            {
                // Ending at the tick and running down-left: rotated the other way, the first letters sit under the frame.
                style.Rotation = -45;
                style.Alignment = Alignment.UpperRight;
                // Room for the slanted labels and, below them, the axis title (it is drawn at the panel's bottom edge).
                float axisTitle = string.IsNullOrEmpty(xLabel) ? 0 : plot.Axes.Bottom.Label.FontSize * 1.6f;
                plot.Axes.Bottom.MinimumSize = Math.Min(widest * 0.71f + 20 + axisTitle, Height * 0.45f);
            }
        }
        plot.Axes.Margins(bottom: 0); // bars start at zero
        return Save(plot, path);
    }

    /// <summary>
    /// Text next to a point, on the side facing the middle of the plot: text is clipped at the data area's
    /// edge, and the labelled points (baseline, extreme trade-offs) tend to lie at the edges.
    /// </summary>
    static void AddPointLabels(Plot plot, IReadOnlyList<(double X, double Y, string Text)> labels)
    {
        if (labels.Count == 0) return;
        plot.Axes.AutoScale();
        var limits = plot.Axes.GetLimits();
        foreach (var (x, y, label) in labels)
        {
            bool left = x > (limits.Left + limits.Right) / 2, below = y > limits.Bottom + 0.85 * (limits.Top - limits.Bottom);
            var text = plot.Add.Text(label, x, y);
            text.LabelFontSize = 11;
            text.Alignment = (left, below) switch
            {
                (false, false) => Alignment.LowerLeft,
                (true, false) => Alignment.LowerRight,
                (false, true) => Alignment.UpperLeft,
                (true, true) => Alignment.UpperRight,
            };
            text.OffsetX = left ? -8 : 8;
            text.OffsetY = below ? 6 : -6;
        }
    }

    /// <summary>Markers drawn as outlines (hollow shapes, crosses) of the given line width.</summary>
    static void OutlineMarkers(Plot plot, double[] xs, double[] ys, MarkerShape shape, float size, Color color, float lineWidth, string legend)
    {
        var markers = plot.Add.Markers(xs, ys, shape, size, color);
        markers.MarkerLineWidth = lineWidth;
        markers.LegendText = legend;
    }

    /// <param name="subtitle">A smaller line under the title: where the values come from, which would crowd an axis title.</param>
    static Plot NewPlot(string title, string xLabel, string yLabel, string? subtitle = null)
    {
        var plot = new Plot();
        plot.Title(title);
        if (subtitle is not null)
        {
            var panel = new ScottPlot.Panels.TitlePanel();
            panel.Label.Text = subtitle;
            panel.Label.FontSize = 12;
            panel.Label.Bold = false;
            panel.Label.ForeColor = Colors.DimGray;
            plot.Axes.AddPanel(panel);
        }
        plot.XLabel(xLabel);
        plot.YLabel(yLabel);
        // 12,000,000 MACs read better as 12M.
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = Si };
        plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic { LabelFormatter = Si };
        return plot;
    }

    /// <summary>SI notation from 1000 up (12k, 4.6M, 1.2G); smaller values as they are, without floating-point noise.</summary>
    static string Si(double value)
    {
        (double scale, string suffix)[] units = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
        foreach (var (scale, suffix) in units)
            if (Math.Abs(value) >= scale * 0.9995) return (value / scale).ToString("0.###", CultureInfo.InvariantCulture) + suffix;
        return Math.Round(value, 12).ToString("G10", CultureInfo.InvariantCulture);
    }

    static PlotFiles Save(Plot plot, string path)
    {
        // Outside the data area: a legend inside would hide points wherever the front happens to lie. Below, not beside: the
        // labels name fidelities and constraints and are long, and beside the data they squeezed it into a narrow strip.
        if (plot.Legend.ManualItems.Count > 0 || plot.GetPlottables().Any(p => p.LegendItems.Any(i => !string.IsNullOrEmpty(i.LabelText))))
        {
            var legend = plot.ShowLegend(Edge.Bottom); // a panel with a legend of its own: plot.Legend is the hidden inner one
            legend.Legend.Orientation = Orientation.Horizontal; // wraps into rows, so every entry fits below the data
            legend.Legend.TightHorizontalWrapping = true;
            legend.Legend.SymbolWidth = 30; // long enough to tell a dashed line from a solid one
        }
        var files = new PlotFiles(path + ".png", path + ".svg");
        AtomicFile.WriteAllBytes(files.Png, plot.GetImageBytes(Width, Height, ImageFormat.Png));
        AtomicFile.WriteAllText(files.Svg, NormalizeSvg(plot.GetSvgXml(Width, Height)));
        return files;
    }

    /// <summary>
    /// Skia numbers clip paths from a process-wide counter (cl_24, cl_2f, ...): renumbered from 0 so that the same
    /// plot gives the same file. Font families get a generic fallback for viewers without the rendering font.
    /// </summary>
    static string NormalizeSvg(string svg)
    {
        var ids = new Dictionary<string, string>();
        svg = ClipId().Replace(svg, m =>
        {
            if (!ids.TryGetValue(m.Value, out string? id)) ids[m.Value] = id = "clip" + ids.Count.ToString(CultureInfo.InvariantCulture);
            return id;
        });
        return FontFamily().Replace(svg, m => $"font-family=\"{m.Groups[1].Value}, sans-serif\"");
    }

    [GeneratedRegex("""(?<=id="|url\(#)cl_[0-9a-f]+(?=[")])""")]
    private static partial Regex ClipId();

    [GeneratedRegex("font-family=\"([^\",]*)\"")]
    private static partial Regex FontFamily();

    /// <summary>Five-pointed star; ScottPlot 5 has no star marker.</summary>
    sealed class StarMarker : IMarker
    {
        public void Render(SKCanvas canvas, Paint paint, Pixel center, float size, MarkerStyle markerStyle)
        {
            using var path = new SKPath();
            float outer = size / 2, inner = outer * 0.45f;
            for (int i = 0; i < 10; i++)
            {
                double angle = -Math.PI / 2 + i * Math.PI / 5;
                float r = i % 2 == 0 ? outer : inner;
                var point = new SKPoint(center.X + r * (float)Math.Cos(angle), center.Y + r * (float)Math.Sin(angle));
                if (i == 0) path.MoveTo(point); else path.LineTo(point);
            }
            path.Close();
            using var fill = new SKPaint { IsAntialias = true, Style = SKPaintStyle.Fill, Color = markerStyle.FillColor.ToSKColor() };
            canvas.DrawPath(path, fill);
            if (markerStyle.OutlineWidth > 0)
            {
                using var stroke = new SKPaint
                {
                    IsAntialias = true, Style = SKPaintStyle.Stroke, StrokeWidth = markerStyle.OutlineWidth,
                    Color = markerStyle.OutlineColor.ToSKColor(),
                };
                canvas.DrawPath(path, stroke);
            }
        }
    }

    /// <summary>
    /// Ticks for an axis whose coordinates are log10 of the values: decades when several are in view, else 1-2-5
    /// steps, labelled with the value itself in SI notation (100k, 1M, 2.5G).
    /// </summary>
    sealed class Log10Ticks : ITickGenerator
    {
        public Tick[] Ticks { get; set; } = [];
        public int MaxTickCount { get; set; } = 1000;

        public void Regenerate(CoordinateRange range, Edge edge, PixelLength size, Paint paint, LabelStyle labelStyle)
        {
            double lo = Math.Min(range.Min, range.Max), hi = Math.Max(range.Min, range.Max);
            if (!double.IsFinite(lo) || !double.IsFinite(hi) || hi - lo > 300) { Ticks = []; return; }
            int first = (int)Math.Floor(lo), last = (int)Math.Ceiling(hi);
            // Fewest mantissas that still give at least 3 labelled ticks in view.
            double[][] mantissaSets = [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]];
            var majors = new List<double>();
            foreach (var mantissas in mantissaSets)
            {
                majors = Candidates(first, last, mantissas).Where(p => p >= lo && p <= hi).ToList();
                if (majors.Count >= 3) break;
            }
            if (majors.Count < 3) majors = LinearTicks(Math.Pow(10, lo), Math.Pow(10, hi)).Select(Math.Log10).ToList(); // within a factor ~2
            if (majors.Count > 12) majors = majors.Where((_, i) => i % (int)Math.Ceiling(majors.Count / 8.0) == 0).ToList();
            var minors = Candidates(first, last, [1, 2, 3, 4, 5, 6, 7, 8, 9])
                .Where(p => p >= lo && p <= hi && !majors.Any(m => Math.Abs(m - p) < 1e-9));
            Ticks = majors.Select(p => Tick.Major(p, Si(Math.Pow(10, p)))).Concat(minors.Select(Tick.Minor)).ToArray();
        }

        /// <summary>About five round values (steps of 1, 2 or 5 × 10^k) between two positive values.</summary>
        static IEnumerable<double> LinearTicks(double from, double to)
        {
            double raw = (to - from) / 5;
            if (!(raw > 0) || !double.IsFinite(raw)) yield break;
            double magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double step = new[] { 1.0, 2, 5, 10 }.Select(m => m * magnitude).First(candidate => candidate >= raw);
            for (double value = Math.Ceiling(from / step) * step; value <= to; value += step)
                if (value > 0) yield return value;
        }

        static IEnumerable<double> Candidates(int first, int last, double[] mantissas) =>
            Enumerable.Range(first, last - first + 1).SelectMany(e => mantissas.Select(m => e + Math.Log10(m)));
    }
}
