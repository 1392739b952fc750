namespace ParetoPrune.Cli.Dashboard;

/// <summary>The dashboard's page: static HTML whose script polls <c>/api/studies</c> and draws every study side by side.</summary>
static class DashboardPage
{
    public const string Html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>ParetoPrune dashboard</title>
        <style>
        body { font-family: system-ui, "DejaVu Sans", sans-serif; margin: 1rem; color: #222; }
        h1 { font-size: 1.3rem; margin: 0 0 0.3rem; } #status { color: #555; font-size: 0.9rem; } #errors { color: #b00; }
        #studies { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 1rem; margin-top: 0.8rem; }
        .study { border: 1px solid #ccc; border-radius: 8px; padding: 0.6rem 0.9rem; }
        .study h2 { font-size: 1.05rem; margin: 0.2rem 0; } .state { font-size: 0.85rem; color: #555; }
        .bar { background: #eee; height: 0.7rem; border-radius: 4px; margin: 0.15rem 0 0.4rem; }
        .bar div { background: #1f77b4; height: 100%; border-radius: 4px; }
        table { border-collapse: collapse; font-size: 0.8rem; width: 100%; } th, td { border: 1px solid #ddd; padding: 0.1rem 0.35rem; text-align: right; }
        .scroll { max-height: 16rem; overflow-y: auto; }
        svg.plot { display: block; width: 100%; max-width: 640px; height: auto; font-family: system-ui, "DejaVu Sans", sans-serif; }
        svg.plot text { fill: #333; } svg.plot .tick { font-size: 11px; fill: #555; } svg.plot .axis-title { font-size: 12px; }
        svg.plot .legend text { font-size: 11px; }
        </style>
        </head>
        <body>
        <h1>ParetoPrune dashboard</h1>
        <div id="status">loading…</div><div id="errors"></div>
        <div id="studies"></div>
        <script>
        "use strict";
        var updates = 0;
        window.addEventListener("error", function (e) { document.getElementById("errors").textContent += "script error: " + e.message + " "; });
        function el(tag, attrs, text) { var e = document.createElement(tag); for (var k in attrs) { e.setAttribute(k, attrs[k]); } if (text !== undefined) { e.textContent = text; } return e; }
        function si(v) { var a = Math.abs(v); return a >= 1e9 ? (v / 1e9).toFixed(2) + " G" : a >= 1e6 ? (v / 1e6).toFixed(2) + " M" : a >= 1e3 ? (v / 1e3).toFixed(2) + " k" : v === 0 ? "0" : v.toPrecision(4); }
        // Tick labels of one axis with as many decimals as their step needs, the same for all (0.02, 0.04 … 0.14).
        function stepped(values) { var step = values.length > 1 ? values[1] - values[0] : 1, d = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
          return function (v) { return v.toFixed(d); }; }
        function svg(tag, attrs) { var e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (var k in attrs) { e.setAttribute(k, attrs[k]); } return e; }
        function bar(label, done, total) {
          var box = el("div", { "class": "progress", "data-stage": label });
          box.appendChild(el("div", {}, label + " " + done + "/" + total));
          var outer = el("div", { "class": "bar" }), inner = el("div", {});
          inner.style.width = (total > 0 ? Math.min(100, 100 * done / total) : 0) + "%";
          outer.appendChild(inner); box.appendChild(outer); return box;
        }
        // Round tick values: steps of 1, 2 or 5 times a power of ten, about n of them between lo and hi.
        function ticks(lo, hi, n) {
          var raw = (hi - lo) / n, power = Math.pow(10, Math.floor(Math.log10(raw))), step = power;
          [1, 2, 5, 10].forEach(function (k) { if (raw > power * k * 0.75) { step = power * k; } });
          var out = [];
          for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) { out.push(Math.abs(v) < step * 1e-9 ? 0 : v); }
          return out;
        }
        // Axes with gridlines, tick labels and titles on a plot area; returns the scales.
        function axes(plot, box, x0, x1, y0, y1, xTitle, yTitle, xFormat, yFormat) {
          function X(v) { return box.l + (box.r - box.l) * (v - x0) / (x1 - x0); } function Y(v) { return box.b - (box.b - box.t) * (v - y0) / (y1 - y0); }
          ticks(x0, x1, 6).forEach(function (v) {
            plot.appendChild(svg("line", { x1: X(v), y1: box.t, x2: X(v), y2: box.b, stroke: "#eee" }));
            var t = svg("text", { x: X(v), y: box.b + 15, "text-anchor": "middle", "class": "tick x" }); t.textContent = xFormat(v); plot.appendChild(t);
          });
          var yTicks = ticks(y0, y1, 5);
          yFormat = yFormat || stepped(yTicks);
          yTicks.forEach(function (v) {
            plot.appendChild(svg("line", { x1: box.l, y1: Y(v), x2: box.r, y2: Y(v), stroke: "#eee" }));
            var t = svg("text", { x: box.l - 6, y: Y(v) + 4, "text-anchor": "end", "class": "tick y" }); t.textContent = yFormat(v); plot.appendChild(t);
          });
          plot.appendChild(svg("line", { x1: box.l, y1: box.b, x2: box.r, y2: box.b, stroke: "#888" }));
          plot.appendChild(svg("line", { x1: box.l, y1: box.t, x2: box.l, y2: box.b, stroke: "#888" }));
          var xt = svg("text", { x: (box.l + box.r) / 2, y: box.b + 34, "text-anchor": "middle", "class": "axis-title x" }); xt.textContent = xTitle; plot.appendChild(xt);
          var yt = svg("text", { x: 0, y: 0, "text-anchor": "middle", "class": "axis-title y", transform: "translate(14 " + (box.t + box.b) / 2 + ") rotate(-90)" });
          yt.textContent = yTitle; plot.appendChild(yt);
          return { X: X, Y: Y };
        }
        function padded(lo, hi) { if (hi === lo) { return [lo - 1, hi + 1]; } var pad = (hi - lo) * 0.06; return [lo - pad, hi + pad]; }
        var colours = { screening: "#999", promotion: "#2ca02c", "final": "#1f77b4", best: "#d62728" };
        function scatter(s) {
          var pts = s.points.filter(function (p) { return p.accuracy !== null && p.cost !== null; });
          var W = 640, H = 330, box = { l: 62, r: W - 12, t: 34, b: H - 48 };
          var plot = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "plot front", "aria-label": "accuracy against " + s.cost });
          var xs = pts.map(function (p) { return p.cost; }).concat(s.baselineCost === null ? [] : [s.baselineCost]);
          var ys = pts.map(function (p) { return 100 * p.accuracy; }).concat(s.baselineAccuracy === null ? [] : [100 * s.baselineAccuracy]);
          if (xs.length === 0) { return plot; }
          var xr = padded(Math.min.apply(null, xs), Math.max.apply(null, xs)), yr = padded(Math.min.apply(null, ys), Math.max.apply(null, ys));
          var unit = s.costUnit && s.costUnit !== s.cost ? " (" + s.costUnit + ")" : "";
          var a = axes(plot, box, xr[0], xr[1], yr[0], yr[1], s.cost + unit, "accuracy (%)", si, null);
          pts.forEach(function (p) {
            var c = svg("circle", { cx: a.X(p.cost), cy: a.Y(100 * p.accuracy), r: p.exported ? 5 : 3, fill: p.onFront ? colours["final"] : "none",
                                    stroke: colours[p.stage] || colours.screening, "stroke-width": 1.5, "data-trial": p.trial });
            var t = svg("title", {}); t.textContent = "trial " + p.trial + " (" + p.stage + "): " + (100 * p.accuracy).toFixed(2) + " %, " + si(p.cost); c.appendChild(t); plot.appendChild(c);
            if (p.trial === s.best) {
              plot.appendChild(svg("circle", { cx: a.X(p.cost), cy: a.Y(100 * p.accuracy), r: 9, fill: "none", stroke: colours.best, "stroke-width": 2.5, "class": "best" }));
            }
          });
          if (s.baselineCost !== null) { plot.appendChild(svg("rect", { x: a.X(s.baselineCost) - 4, y: a.Y(100 * s.baselineAccuracy) - 4, width: 8, height: 8, fill: "#000" })); }
          // The legend, in one row above the plot area.
          var legend = svg("g", { "class": "legend" }), x = box.l;
          [["screening", { r: 4, fill: "none", stroke: colours.screening }], ["promotion", { r: 4, fill: "none", stroke: colours.promotion }],
           ["final", { r: 4, fill: "none", stroke: colours["final"] }], ["on the front", { r: 4, fill: colours["final"], stroke: colours["final"] }],
           ["recommended", { r: 6, fill: "none", stroke: colours.best, "stroke-width": 2.5 }], ["unpruned", null]].forEach(function (item) {
            var mark = item[1] === null ? svg("rect", { x: x - 4, y: 12, width: 8, height: 8, fill: "#000" })
                                        : svg("circle", Object.assign({ cx: x, cy: 16, "stroke-width": 1.5, "data-legend": item[0] }, item[1]));
            legend.appendChild(mark);
            var t = svg("text", { x: x + 9, y: 20 }); t.textContent = item[0]; legend.appendChild(t);
            x += 24 + 7 * item[0].length;
          });
          plot.appendChild(legend);
          return plot;
        }
        // The screening front's hypervolume after each trial: how the search is still finding better trade-offs.
        function hypervolumeCurve(s) {
          var W = 640, H = 200, box = { l: 62, r: W - 12, t: 12, b: H - 48 };
          var plot = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "plot hypervolume", "aria-label": "hypervolume against trials" });
          var hv = s.hypervolume, top = Math.max.apply(null, hv.concat([0]));
          var a = axes(plot, box, 0.5, Math.max(hv.length, 2) + 0.5, 0, top > 0 ? top * 1.08 : 1, "trials screened", "hypervolume",
                       function (v) { return Number.isInteger(v) ? String(v) : ""; }, null);
          plot.appendChild(svg("polyline", { points: hv.map(function (v, i) { return a.X(i + 1) + "," + a.Y(v); }).join(" "), fill: "none", stroke: colours["final"], "stroke-width": 2, "class": "hv-line" }));
          hv.forEach(function (v, i) { plot.appendChild(svg("circle", { cx: a.X(i + 1), cy: a.Y(v), r: 2.5, fill: colours["final"], "class": "hv-point" })); });
          return plot;
        }
        function render(studies) {
          var root = document.getElementById("studies");
          root.textContent = "";
          studies.forEach(function (s) {
            var box = el("section", { "class": "study", "data-status": s.status, "data-trials": s.trials });
            box.appendChild(el("h2", {}, s.name));
            box.appendChild(el("div", { "class": "state" }, s.problem ? s.problem : s.status + (s.writer ? " (" + s.writer + ")" : "") + " · " + s.objectives.join(", ") +
                                 (s.best !== null ? " · best under the constraints: trial " + s.best : "")));
            box.appendChild(bar("screening", s.screened, s.budget));
            box.appendChild(bar("promotion", s.promoted, s.promoteTarget));
            box.appendChild(bar("final", s.finished, s.finalTarget));
            box.appendChild(scatter(s));
            if (s.hypervolume.length > 0) {
              box.appendChild(el("div", { "class": "hv" }, "hypervolume " + s.hypervolume[s.hypervolume.length - 1].toFixed(4) + " after " + s.hypervolume.length + " trials"));
              box.appendChild(hypervolumeCurve(s));
            }
            var table = el("table", { "class": "trials" }), head = el("tr", {});
            ["trial", "state", "stage", "kept", "accuracy", s.cost || "cost"].forEach(function (h) { head.appendChild(el("th", {}, h)); });
            table.appendChild(head);
            s.points.slice().reverse().forEach(function (p) {
              var row = el("tr", { "data-trial": p.trial });
              [p.trial, p.state, p.stage || "", p.kept.join(" "), p.accuracy === null ? "" : (100 * p.accuracy).toFixed(1) + " %", p.cost === null ? "" : si(p.cost)]
                .forEach(function (v) { row.appendChild(el("td", {}, String(v))); });
              table.appendChild(row);
            });
            var scroll = el("div", { "class": "scroll" }); scroll.appendChild(table); box.appendChild(scroll);
            root.appendChild(box);
          });
        }
        function poll() {
          fetch("/api/studies", { cache: "no-store" })
            .then(function (r) { if (!r.ok) { throw new Error("the server answered " + r.status); } return r.json(); })
            .then(function (studies) {
              render(studies); updates += 1;
              var status = document.getElementById("status");
              status.setAttribute("data-updates", updates);
              status.textContent = "updated " + new Date().toLocaleTimeString() + " · every 2 s";
            })
            .catch(function (e) { document.getElementById("status").textContent = "cannot reach the dashboard server: " + e.message; });
        }
        poll();
        setInterval(poll, 2000);
        </script>
        </body>
        </html>
        """;
}
