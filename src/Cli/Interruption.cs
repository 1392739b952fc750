namespace ParetoPrune.Cli;

/// <summary>
/// Ctrl-C for long, resumable runs: the first press stops after the work in flight (which is stored), the second
/// abandons it.
/// </summary>
sealed class Interruption : IDisposable
{
    /// <summary>Commands that handle Ctrl-C themselves, so System.CommandLine must not end the process on it.</summary>
    public static readonly IReadOnlySet<string> Commands = new HashSet<string> { "search", "demo", "compare", "worker" };

    /// <summary>The exit code of a run stopped by the user, cleanly or abandoned.</summary>
    public const int ExitCode = ExitCodes.Stopped;

    readonly CancellationTokenSource stop = new(), abort = new();
    readonly ConsoleCancelEventHandler handler;

    /// <param name="stopping">Printed on the first press: what finishes, and that a second press abandons it.</param>
    public Interruption(TextWriter error, string stopping)
    {
        handler = (_, e) =>
        {
            e.Cancel = true;
            if (!stop.IsCancellationRequested)
            {
                stop.Cancel();
                error.WriteLine(stopping);
            }
            else abort.Cancel();
        };
        Console.CancelKeyPress += handler;
    }

    public CancellationToken Stop => stop.Token;
    public CancellationToken Abort => abort.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= handler;
        stop.Dispose();
        abort.Dispose();
    }
}
