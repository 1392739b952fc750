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
        #studies { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 1rem; margin-top: 0.8rem; }
        .study { border: 1px solid #ccc; border-radius: 8px; padding: 0.6rem 0.9rem; }
        .study h2 { font-size: 1.05rem; margin: 0.2rem 0; } .state { font-size: 0.85rem; color: #555; }
        .bar { background: #eee; height: 0.7rem; border-radius: 4px; margin: 0.15rem 0 0.4rem; }
        .bar div { background: #1f77b4; height: 100%; border-radius: 4px; }
        table { border-collapse: collapse; font-size: 0.8rem; width: 100%; } th, td { border: 1px solid #ddd; padding: 0.1rem 0.35rem; text-align: right; }
        .scroll { max-height: 16rem; overflow-y: auto; } svg { width: 100%; height: auto; }
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
        function si(v) { var a = Math.abs(v); return a >= 1e9 ? (v / 1e9).toFixed(2) + " G" : a >= 1e6 ? (v / 1e6).toFixed(2) + " M" : a >= 1e3 ? (v / 1e3).toFixed(2) + " k" : v.toPrecision(4); }
        function svg(tag, attrs) { var e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (var k in attrs) { e.setAttribute(k, attrs[k]); } return e; }
        function bar(label, done, total) {
          var box = el("div", { "class": "progress", "data-stage": label });
          box.appendChild(el("div", {}, label + " " + done + "/" + total));
          var outer = el("div", { "class": "bar" }), inner = el("div", {});
          inner.style.width = (total > 0 ? Math.min(100, 100 * done / total) : 0) + "%";
          outer.appendChild(inner); box.appendChild(outer); return box;
        }
        function scatter(s) {
          var pts = s.points.filter(function (p) { return p.accuracy !== null && p.cost !== null; });
          var W = 420, H = 240, m = 36, plot = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "class": "front" });
          var xs = pts.map(function (p) { return p.cost; }).concat(s.baselineCost === null ? [] : [s.baselineCost]);
          var ys = pts.map(function (p) { return 100 * p.accuracy; }).concat(s.baselineAccuracy === null ? [] : [100 * s.baselineAccuracy]);
          if (xs.length === 0) { return plot; }
          var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
          if (x1 === x0) { x1 = x0 + 1; } if (y1 === y0) { y1 = y0 + 1; }
          function X(v) { return m + (W - 2 * m) * (v - x0) / (x1 - x0); } function Y(v) { return H - m - (H - 2 * m) * (v - y0) / (y1 - y0); }
          plot.appendChild(svg("line", { x1: m, y1: H - m, x2: W - m, y2: H - m, stroke: "#999" }));
          plot.appendChild(svg("line", { x1: m, y1: m, x2: m, y2: H - m, stroke: "#999" }));
          var xl = svg("text", { x: W / 2, y: H - 6, "text-anchor": "middle", "font-size": 11 }); xl.textContent = s.cost + (s.costUnit && s.costUnit !== "MACs" ? " (" + s.costUnit + ")" : "") + ": " + si(x0) + " to " + si(x1); plot.appendChild(xl);
          var yl = svg("text", { x: 4, y: 12, "font-size": 11 }); yl.textContent = "accuracy (%)"; plot.appendChild(yl);
          var colours = { screening: "#aaa", promotion: "#2ca02c", "final": "#1f77b4" };
          pts.forEach(function (p) {
            var c = svg("circle", { cx: X(p.cost), cy: Y(100 * p.accuracy), r: p.exported ? 5 : 3, fill: p.onFront ? colours["final"] : "none",
                                    stroke: colours[p.stage] || "#aaa", "data-trial": p.trial });
            var t = svg("title", {}); t.textContent = "trial " + p.trial + " (" + p.stage + ")"; c.appendChild(t); plot.appendChild(c);
          });
          if (s.baselineCost !== null) { plot.appendChild(svg("rect", { x: X(s.baselineCost) - 4, y: Y(100 * s.baselineAccuracy) - 4, width: 8, height: 8, fill: "#000" })); }
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
            if (s.hypervolume.length > 0) { box.appendChild(el("div", { "class": "hv" }, "hypervolume " + s.hypervolume[s.hypervolume.length - 1].toFixed(4) + " after " + s.hypervolume.length + " trials")); }
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
