using Npgsql;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// Where studies are kept, as <c>--storage</c> names it. A PostgreSQL URL,
/// <c>postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]</c>, names a server that worker processes on
/// many machines share. Without <c>--storage</c>, a study is the SQLite file <c>study.db</c> in its run directory.
/// </summary>
public sealed record StudyStorage
{
    StudyStorage(string location, string connectionString) => (Location, ConnectionString) = (location, connectionString);

    /// <summary>The URL without its password, for messages and listings.</summary>
    public string Location { get; }

    internal string ConnectionString { get; }

    /// <summary>URL query parameters understood, and the Npgsql setting each becomes.</summary>
    static readonly Dictionary<string, string> Parameters = new(StringComparer.OrdinalIgnoreCase)
    {
        ["sslmode"] = "SSL Mode", ["host"] = "Host", ["port"] = "Port", ["user"] = "Username", ["password"] = "Password",
        ["application_name"] = "Application Name", ["connect_timeout"] = "Timeout", ["passfile"] = "Passfile",
    };

    /// <exception cref="ArgumentException">Not a PostgreSQL URL, or one with a parameter this tool does not pass on; the message says which.</exception>
    public static StudyStorage Parse(string url)
    {
        if (!url.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) && !url.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--storage {url}: give a PostgreSQL URL, postgresql://USER@HOST[:PORT]/DATABASE (without --storage a study is the SQLite file study.db in --out)");
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
            throw new ArgumentException($"--storage {Redact(url)} is not a valid URL: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
        var builder = new NpgsqlConnectionStringBuilder
        {
            // Short waits: a search reports a server it cannot reach instead of hanging, and claims never queue long.
            Timeout = 15, CommandTimeout = 60, ApplicationName = "paretoprune", IncludeErrorDetail = true,
        };
        if (uri.Host.Length > 0) builder.Host = uri.Host;
        if (!uri.IsDefaultPort && uri.Port > 0) builder.Port = uri.Port;
        if (uri.UserInfo.Length > 0)
        {
            var parts = uri.UserInfo.Split(':', 2);
            builder.Username = Uri.UnescapeDataString(parts[0]);
            if (parts.Length == 2) builder.Password = Uri.UnescapeDataString(parts[1]);
        }
        string database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        if (database.Length == 0) throw new ArgumentException($"--storage {Redact(url)} names no database: postgresql://USER@HOST/DATABASE");
        builder.Database = database;
        foreach (string pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var kv = pair.Split('=', 2);
            string key = Uri.UnescapeDataString(kv[0]), value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
            if (!Parameters.TryGetValue(key, out string? setting))
                throw new ArgumentException($"--storage: unknown URL parameter '{key}'; known: {string.Join(", ", Parameters.Keys)}");
            try { builder[setting] = value; }
            catch (Exception e) when (e is ArgumentException or FormatException) { throw new ArgumentException($"--storage: {key}={value} is not accepted: {e.Message}", e); }
        }
        if (string.IsNullOrEmpty(builder.Host)) throw new ArgumentException($"--storage {Redact(url)} names no host (for a local socket: ?host=/var/run/postgresql)");
        return new StudyStorage(Redact(url), builder.ConnectionString);
    }

    /// <summary>The URL with any password replaced by ***.</summary>
    static string Redact(string url)
    {
        int scheme = url.IndexOf("://", StringComparison.Ordinal), at = url.IndexOf('@');
        if (scheme < 0 || at < scheme) return url;
        int colon = url.IndexOf(':', scheme + 3);
        return colon > 0 && colon < at ? url[..(colon + 1)] + "***" + url[at..] : url;
    }

    public override string ToString() => Location;
}
