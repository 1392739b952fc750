using Spectre.Console;

namespace ParetoPrune.Cli;

/// <summary>
/// The one progress display of the long study commands (search, compare): at a terminal, a bar whose description is the
/// current line and, above it, the reports worth keeping (a trial or a point finished); in logs and CI, one line per
/// report, written as it comes.
/// </summary>
static class ProgressDisplay
{
    /// <param name="Completed">Units of work done of <paramref name="Total"/>, in the current stage.</param>
    /// <param name="Line">The stage in one line (the bar's description).</param>
    /// <param name="Message">What the report says.</param>
    /// <param name="Keep">Whether the message is printed above the bar (a finished trial), not only shown in passing.</param>
    public readonly record struct View(int Completed, int Total, string Line, string Message, bool Keep);

    public static async Task<T> RunAsync<TProgress, T>(CliContext context, Func<IProgress<TProgress>, Task<T>> run, Func<TProgress, View> view)
    {
        if (!context.IsInteractive)
            return await run(new InlineProgress<TProgress>(p =>
            {
                var shown = view(p);
                context.Console.MarkupLine($"{Markup.Escape(shown.Line)} · {Markup.Escape(shown.Message)}");
            }));
        T? result = default;
        await context.Console.Progress()
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: 1);
                result = await run(new InlineProgress<TProgress>(p =>
                {
                    var shown = view(p);
                    task.MaxValue = Math.Max(1, shown.Total);
                    task.Value = shown.Completed;
                    task.Description = Markup.Escape(shown.Line);
                    if (shown.Keep) context.Console.MarkupLine($"[grey]{Markup.Escape(shown.Message)}[/]");
                }));
                task.Value = task.MaxValue;
            });
        return result!;
    }
}
