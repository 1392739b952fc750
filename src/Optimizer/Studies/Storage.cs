using Microsoft.Data.Sqlite;

namespace ParetoPrune.Optimizer.Studies;

/// <summary>File-system conditions that stop a run rather than fail one trial.</summary>
static class Storage
{
    const int NoSpace = 28, QuotaExceeded = 122; // ENOSPC, EDQUOT (Linux errno: .NET reports it as the IOException's HResult)
    const int WindowsDiskFull = unchecked((int)0x80070070), WindowsHandleDiskFull = unchecked((int)0x80070027);

    /// <summary>
    /// A full disk: not the candidate's fault, so the search stops (exit 2, the study intact) instead of recording the
    /// trial as failed, and the trial runs again on resume.
    /// </summary>
    public static bool IsFull(Exception e) => e switch
    {
        SqliteException s => s.SqliteErrorCode == 13, // SQLITE_FULL
        IOException io when io.HResult is NoSpace or QuotaExceeded or WindowsDiskFull or WindowsHandleDiskFull => true,
        _ => e.InnerException is { } inner && IsFull(inner),
    };

    /// <summary>A full disk under <paramref name="directory"/>, said in words with what became of the run.</summary>
    public static StoreFullException Full(string directory, string outcome, Exception cause) =>
        new($"the disk holding {directory} is full ({Innermost(cause).Message}); {outcome}", cause);

    static Exception Innermost(Exception e) => e.InnerException is { } inner && IsFull(inner) ? Innermost(inner) : e;
}

/// <summary>A run stopped because its disk is full; the message says what was kept.</summary>
public sealed class StoreFullException(string message, Exception inner) : IOException(message, inner);
