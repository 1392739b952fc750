using System.Text.RegularExpressions;

namespace ParetoPrune.Optimizer.Reporting;

/// <summary>Failures counted by reason, for the one line a run that produced nothing prints: "30 of 30 trials failed: the
/// loss became NaN (30)".</summary>
public static partial class FailureReasons
{
    /// <summary>"N of M WHAT failed: reason (count), …", most frequent reason first.</summary>
    public static string Summarise(IReadOnlyCollection<string> errors, int total, string what) =>
        $"{errors.Count} of {total} {what} failed" + (errors.Count == 0 ? "" : ": " + string.Join(", ",
            errors.GroupBy(Reason).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} ({g.Count()})")));

    /// <summary>Where each failure is recorded, and what to try: the close of the line a run that produced nothing prints.</summary>
    public static string NextStep(string csv) =>
        $". Each one's error is in {csv}; a loss that diverged on ATen too needs a lower learning rate or a gentler budget, " +
        "and PARETOPRUNE_ONEDNN=off trains on ATen's kernels alone";

    /// <summary>The reason without what differs between trials: the stage and exception names in front, and the details
    /// after the first clause (where, which step, which numbers).</summary>
    public static string Reason(string error)
    {
        string text = Prefix().Replace(error.Trim(), "");
        int cut = text.IndexOfAny([',', '(', ';']);
        int at = text.IndexOf(" at ", StringComparison.Ordinal);
        if (at > 0 && (cut < 0 || at < cut)) cut = at;
        text = cut > 0 ? text[..cut] : text;
        return Number().Replace(text.Trim(), "N");
    }

    [GeneratedRegex(@"^((Screening|Promotion|Final): )?(\w+Exception: )?")]
    private static partial Regex Prefix();

    [GeneratedRegex(@"\d+(\.\d+)?")]
    private static partial Regex Number();
}
