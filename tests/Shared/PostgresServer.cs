using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Xunit.Sdk;

namespace ParetoPrune.Tests.Shared;

/// <summary>
/// A real, throwaway PostgreSQL server for tests: Debian's binaries, a new cluster in a temporary directory, on a free
/// local port, trust authentication, stopped and removed when the test process ends. As root, the cluster runs as the
/// <c>postgres</c> user (the server refuses root). Where PostgreSQL is not installed, tests that need it are skipped
/// with <see cref="Unavailable"/> as the reason. With <c>PARETOPRUNE_REQUIRE_POSTGRES=1</c> (CI) they run anyway, and
/// fail, so that a missing server cannot pass as a skip.
/// </summary>
public sealed class PostgresServer : IDisposable
{
    static readonly Lazy<PostgresServer> shared = new(() => Start(), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The server of this test process, started on first use.</summary>
    public static PostgresServer Shared => shared.Value;

    /// <summary>Why PostgreSQL tests cannot run here; null when they can.</summary>
    public static string? Unavailable { get; } = FindReason();

    readonly string directory, bin;
    readonly string? runAs;
    int databases;

    PostgresServer(string directory, string bin, string? runAs, int port) => (this.directory, this.bin, this.runAs, Port) = (directory, bin, runAs, port);

    public int Port { get; }

    const string User = "paretoprune";

    /// <summary>A new, empty database on the server, as a <c>--storage</c> URL.</summary>
    public string NewDatabase()
    {
        string name = $"test{Interlocked.Increment(ref databases)}";
        Run(Path.Combine(bin, "createdb"), "-h", "127.0.0.1", "-p", Port.ToString(), "-U", User, name);
        return $"postgresql://{User}@127.0.0.1:{Port}/{name}";
    }

    static string? BinDirectory() =>
        Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin"))
                .Where(b => File.Exists(Path.Combine(b, "initdb")) && File.Exists(Path.Combine(b, "pg_ctl")))
                .OrderByDescending(b => int.TryParse(Path.GetFileName(Path.GetDirectoryName(b)), out int v) ? v : 0).FirstOrDefault()
            : null;

    static string? FindReason()
    {
        if (Environment.GetEnvironmentVariable("PARETOPRUNE_REQUIRE_POSTGRES") == "1") return null;
        if (!OperatingSystem.IsLinux()) return "the PostgreSQL tests start Debian's server binaries, on Linux";
        if (BinDirectory() is null) return "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb); tools/install-debian-packages.sh installs it";
        if (Environment.IsPrivilegedProcess && !File.Exists("/usr/sbin/runuser")) return "running as root without runuser to start the server as the postgres user";
        return null;
    }

    static PostgresServer Start()
    {
        string bin = BinDirectory() ?? throw new InvalidOperationException(FindReason() ?? "PostgreSQL is not installed");
        RemoveLeftovers();
        string directory = Path.Combine(Path.GetTempPath(), $"paretoprune-pg-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40]);
        Directory.CreateDirectory(directory);
        string? runAs = Environment.IsPrivilegedProcess ? "postgres" : null;
        if (runAs is not null) Run("chown", "-R", $"{runAs}:", directory);
        int port = FreePort();
        var server = new PostgresServer(directory, bin, runAs, port);
        string data = Path.Combine(directory, "data");
        server.RunAsServerUser(Path.Combine(bin, "initdb"), "-D", data, "-U", User, "--auth=trust", "-E", "UTF8", "--no-sync");
        server.RunAsServerUser(Path.Combine(bin, "pg_ctl"), "-D", data, "-l", Path.Combine(directory, "server.log"), "-w", "-t", "60", "-o",
            $"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200", "start");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Dispose();
        return server;
    }

    /// <summary>Clusters of test processes that were killed before they could remove theirs.</summary>
    static void RemoveLeftovers()
    {
        foreach (string old in Directory.GetDirectories(Path.GetTempPath(), "paretoprune-pg-*"))
        {
            var parts = Path.GetFileName(old).Split('-');
            if (parts.Length < 4 || !int.TryParse(parts[2], out int pid)) continue;
            try
            {
                using var process = Process.GetProcessById(pid);
                continue; // still running
            }
            catch (ArgumentException) { }
            try { Directory.Delete(old, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    void RunAsServerUser(string program, params string[] args)
    {
        if (runAs is null) Run(program, args);
        else Run("/usr/sbin/runuser", ["-u", runAs, "--", program, .. args]);
    }

    static void Run(string program, params string[] args)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} failed ({process.ExitCode}): {error}{output.Result}");
    }

    public void Dispose()
    {
        try
        {
            RunAsServerUser(Path.Combine(bin, "pg_ctl"), "-D", Path.Combine(directory, "data"), "-m", "immediate", "-w", "stop");
        }
        catch (InvalidOperationException) { } // stopped already
        try { Directory.Delete(directory, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { } // the next test process removes it
    }
}

/// <summary>A test that needs a real PostgreSQL server (<see cref="PostgresServer"/>); skipped, with the reason, where there is none.</summary>
public sealed class FactWithPostgresAttribute : FactAttribute
{
    public FactWithPostgresAttribute() => Skip = PostgresServer.Unavailable;
}

/// <summary>A theory row for the PostgreSQL backend: <c>"postgresql"</c>, skipped with the reason where there is no server.</summary>
public sealed class PostgresBackendAttribute : DataAttribute
{
    public PostgresBackendAttribute() => Skip = PostgresServer.Unavailable;

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => [["postgresql"]];
}
