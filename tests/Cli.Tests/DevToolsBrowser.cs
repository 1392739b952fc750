using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Headless Chromium driven over its DevTools protocol (a WebSocket on loopback): load a page at a window size, evaluate
/// script in it, and take a screenshot, so a test can assert on what the browser rendered (boxes, font sizes, pixels),
/// not only on the DOM.
/// </summary>
sealed partial class DevToolsBrowser : IAsyncDisposable
{
    readonly Process process;
    readonly string profile;
    readonly ClientWebSocket socket = new();
    int nextId;

    DevToolsBrowser(Process process, string profile) => (this.process, this.profile) = (process, profile);

    public static async Task<DevToolsBrowser> StartAsync(int width, int height)
    {
        var start = new ProcessStartInfo("chromium") { RedirectStandardOutput = true, RedirectStandardError = true };
        string profile = Directory.CreateTempSubdirectory("chromium-profile-").FullName;
        foreach (string arg in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                                       "--remote-debugging-port=0", $"--window-size={width},{height}", $"--user-data-dir={profile}", "about:blank" })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        var browser = new DevToolsBrowser(process, profile);
        _ = process.StandardOutput.ReadToEndAsync();
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID": the page target is listed beside it.
        string? line;
        int port = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (port == 0 && (line = await process.StandardError.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60))) is not null)
            if (Listening().Match(line) is { Success: true } m) port = int.Parse(m.Groups[1].Value);
        if (port == 0) throw new InvalidOperationException("chromium did not open its DevTools port");
        _ = process.StandardError.ReadToEndAsync();
        using var http = new HttpClient();
        string? page = null;
        while (page is null && DateTime.UtcNow < deadline)
        {
            var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
            page = targets.FirstOrDefault(t => (string?)t!["type"] == "page")?["webSocketDebuggerUrl"]?.GetValue<string>();
            if (page is null) await Task.Delay(100);
        }
        await browser.socket.ConnectAsync(new Uri(page ?? throw new InvalidOperationException("chromium lists no page")), CancellationToken.None);
        // The window's size less the browser's own bars is the viewport: set the viewport itself, at one pixel per CSS pixel.
        await browser.SendAsync("Emulation.setDeviceMetricsOverride", new { width, height, deviceScaleFactor = 1, mobile = false });
        return browser;
    }

    /// <summary>Sends one DevTools command and returns its result.</summary>
    public async Task<JsonNode> SendAsync(string method, object parameters)
    {
        int id = ++nextId;
        byte[] message = JsonSerializer.SerializeToUtf8Bytes(new { id, method, @params = parameters });
        await socket.SendAsync(message, WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[1 << 16];
        while (true)
        {
            using var received = new MemoryStream();
            WebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
                received.Write(buffer, 0, result.Count);
            } while (!result.EndOfMessage);
            var node = JsonNode.Parse(Encoding.UTF8.GetString(received.ToArray()))!;
            if ((int?)node["id"] != id) continue; // an event
            if (node["error"] is { } error) throw new InvalidOperationException($"{method}: {error.ToJsonString()}");
            return node["result"]!;
        }
    }

    /// <summary>Evaluates <paramref name="expression"/> in the page and returns its value (JSON-serialisable).</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        var result = await SendAsync("Runtime.evaluate", new { expression, returnByValue = true, awaitPromise = true });
        if (result["exceptionDetails"] is { } e) throw new InvalidOperationException($"the page's script failed: {e.ToJsonString()}");
        return result["result"]!["value"];
    }

    /// <summary>Navigates and waits until <paramref name="ready"/> (a script expression) is true.</summary>
    public async Task LoadAsync(Uri url, string ready)
    {
        await SendAsync("Page.navigate", new { url = url.AbsoluteUri });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await EvaluateAsync(ready))?.GetValue<bool>() != true)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the page was not ready ({ready}) in a minute");
            await Task.Delay(100);
        }
    }

    /// <summary>The page as rendered, a PNG.</summary>
    public async Task<byte[]> ScreenshotAsync() => Convert.FromBase64String((await SendAsync("Page.captureScreenshot", new { format = "png" }))["data"]!.GetValue<string>());

    public async ValueTask DisposeAsync()
    {
        try { await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None); } catch (Exception e) when (e is WebSocketException or InvalidOperationException) { }
        socket.Dispose();
        if (!process.HasExited) process.Kill(true);
        process.WaitForExit(10_000);
        process.Dispose();
        try { Directory.Delete(profile, recursive: true); } catch (IOException) { }
    }

    [GeneratedRegex(@"DevTools listening on ws://127\.0\.0\.1:(\d+)/")]
    private static partial Regex Listening();
}
