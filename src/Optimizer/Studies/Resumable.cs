namespace ParetoPrune.Optimizer.Studies;

/// <summary>Create-or-resume for run stores (a search's study, a comparison): one rule for what resuming may change.</summary>
static class Resumable
{
    /// <summary>
    /// A new store, or with <paramref name="resume"/> the existing one, refused (and closed) when <paramref name="differences"/>
    /// finds that it was started with other settings: a resumed run must answer the same question.
    /// </summary>
    public static TStore CreateOrOpen<TStore>(bool resume, string path, Func<TStore> create, Func<string, TStore> open,
                                              Func<TStore, IReadOnlyList<string>> differences) where TStore : IDisposable
    {
        if (!resume) return create();
        var store = open(path);
        var problems = differences(store);
        if (problems.Count == 0) return store;
        store.Dispose();
        throw new ArgumentException($"cannot resume {path}: it was started with other settings ({string.Join("; ", problems)})");
    }
}
