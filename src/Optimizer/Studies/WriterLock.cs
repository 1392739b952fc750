using System.Diagnostics;
using System.Globalization;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>
/// One writer per run store (a study, a comparison) at a time: an exclusive lock on <c>STORE.lock</c> beside it. The
/// operating system drops the lock when its holder exits, however it exits (kill -9 included), so a killed run never
/// leaves a stale lock behind; the holder's description is kept in the store, where a refused process reads it.
/// </summary>
/// <remarks>.NET takes the lock with <see cref="FileShare.None"/>: <c>flock(LOCK_EX)</c> on Linux and macOS, a share lock on
/// Windows. Advisory: every ParetoPrune process asks for it before writing a store.</remarks>
sealed class WriterLock : IDisposable
{
    /// <summary>How long to keep asking before refusing: a concurrent <see cref="IsHeld"/> probe holds the lock for a moment.</summary>
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(2);

    readonly FileStream file;

    WriterLock(FileStream file) => this.file = file;

    public static string PathFor(string storePath) => storePath + ".lock";

    /// <summary>Takes the lock of <paramref name="storePath"/>, or refuses naming the holder.</summary>
    /// <param name="holder">Reads the holder's description (<see cref="Describe"/>) from the store; called only on refusal.</param>
    /// <exception cref="StoreInUseException">Another process (or another writer in this one) holds it.</exception>
    public static WriterLock Acquire(string storePath, Func<string?> holder)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(Patience.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            if (TryOpen(storePath) is { } file) return new WriterLock(file);
            if (Stopwatch.GetTimestamp() > deadline)
            {
                string? who = null;
                try { who = holder(); } catch (Exception e) when (e is IOException or InvalidDataException or Microsoft.Data.Sqlite.SqliteException) { }
                throw new StoreInUseException($"{storePath} is being written by another process ({who ?? "its description is not recorded yet"}); " +
                                              "wait for it to finish, or stop it, before writing to this run");
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>Whether a writer holds the store now (false when nobody does, including a writer that was killed).</summary>
    public static bool IsHeld(string storePath)
    {
        if (!File.Exists(PathFor(storePath))) return false;
        using var file = TryOpen(storePath);
        return file is null;
    }

    /// <summary>This process, in words, for the refusal another process prints.</summary>
    public static string Describe() =>
        $"process {Environment.ProcessId} on {Environment.MachineName}, since {DateTimeOffset.UtcNow.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC";

    static FileStream? TryOpen(string storePath)
    {
        try
        {
            return new FileStream(PathFor(storePath), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException && e.HResult is 11 or 32 or unchecked((int)0x80070020))
        {
            return null; // EWOULDBLOCK / EAGAIN (Unix), ERROR_SHARING_VIOLATION (Windows): held
        }
    }

    public void Dispose() => file.Dispose();
}

/// <summary>A run store that another process is writing; the message names it.</summary>
public sealed class StoreInUseException(string message) : IOException(message);
