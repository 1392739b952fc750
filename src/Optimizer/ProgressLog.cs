using Microsoft.ML;
using Microsoft.ML.Runtime;

namespace ParetoPrune.Optimizer;

/// <summary>
/// Progress of long library work written to the <see cref="MLContext.Log"/> event, ML.NET's own channel: a program sees
/// it with <c>mlContext.Log += (_, e) =&gt; Console.WriteLine(e.Message);</c> (filter on <c>e.Source</c>, "ParetoPrune.…",
/// to leave ML.NET's own messages out) and ignores it otherwise. The caller's <see cref="IProgress{T}"/>, when it gives
/// one, receives every report as well.
/// </summary>
sealed class ProgressLog<T>(MLContext mlContext, string source, IProgress<T>? inner, Func<T, string> describe) : IProgress<T>, IDisposable
{
    readonly IChannel channel = ((IHostEnvironment)mlContext).Start(source);
    readonly Lock writing = new(); // reports come from parallel trials

    public void Report(T value)
    {
        lock (writing) channel.Info(MessageSensitivity.None, describe(value));
        inner?.Report(value);
    }

    public void Dispose() => channel.Dispose();
}
