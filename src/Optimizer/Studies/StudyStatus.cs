namespace ParetoPrune.Optimizer.Studies;

/// <summary>Where a study (or a comparison) stands. Stored, printed and given in JSON in lower case ("running").</summary>
public enum StudyStatus
{
    /// <summary>Defined, no trial run yet.</summary>
    Created,
    /// <summary>A process works on it now.</summary>
    Running,
    /// <summary>Stopped by the user (Ctrl-C) with its finished trials stored: resume to continue.</summary>
    Stopped,
    /// <summary>Every stage done.</summary>
    Finished,
    /// <summary>Stored as running, but no process works on it any more (killed, or its machine went down): resume to continue.</summary>
    Killed,
}

public static class StudyStatuses
{
    /// <summary>The status as stored and printed: "running".</summary>
    public static string Name(this StudyStatus status) => status.ToString().ToLowerInvariant();

    /// <summary>A stored status; none stored yet is <see cref="StudyStatus.Created"/>.</summary>
    /// <exception cref="InvalidDataException">Not a status this version knows.</exception>
    public static StudyStatus Parse(string? text) =>
        text is null ? StudyStatus.Created
        : Enum.TryParse<StudyStatus>(text, ignoreCase: true, out var status) && !int.TryParse(text, out _) ? status
        : throw new InvalidDataException($"unknown study status '{text}' (known: {string.Join(", ", Enum.GetValues<StudyStatus>().Select(Name))})");
}
