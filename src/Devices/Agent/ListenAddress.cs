using System.Net;

namespace ParetoPrune.Devices.Agent;

/// <summary>What a <c>--listen</c> option of a server (the agent, the dashboard) takes: <c>HOST:PORT</c> or
/// <c>http://HOST:PORT</c>, the host an IP address, <c>localhost</c>, <c>*</c> or <c>+</c>; port 0 picks a free one.</summary>
public static class ListenAddress
{
    /// <exception cref="ArgumentException">Not such an address; the message says what to give.</exception>
    public static IPEndPoint Parse(string listen)
    {
        string text = listen?.Trim() ?? "";
        if (!text.Contains("://", StringComparison.Ordinal)) text = "http://" + text;
        // Uri rejects the wildcard hosts Kestrel users write.
        text = text.Replace("://*:", "://0.0.0.0:", StringComparison.Ordinal).Replace("://+:", "://0.0.0.0:", StringComparison.Ordinal);
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || uri.AbsolutePath != "/")
            throw new ArgumentException($"cannot listen on '{listen}': give http://HOST:PORT or HOST:PORT (HTTPS is not served; see examples/PiSetup)");
        IPAddress ip = uri.IsLoopback && !IPAddress.TryParse(uri.DnsSafeHost, out _) ? IPAddress.Loopback
            : IPAddress.TryParse(uri.DnsSafeHost, out var parsed) ? parsed
            : throw new ArgumentException($"cannot listen on '{listen}': the host must be an IP address, localhost, * or +");
        return new IPEndPoint(ip, uri.Port);
    }
}
