using ParetoPrune.Objectives;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Cli.Dashboard;

/// <summary>One trial as the dashboard draws it: its furthest stage, accuracy there and the first cost objective.</summary>
public sealed record TrialPoint(int Trial, string State, string? Stage, int[] Kept, double? Accuracy, double? Cost, bool Exported, bool OnFront, string? Error);

/// <summary>
/// A study as it stands now, read beside the search that writes it (WAL readers never block the writer): progress per
/// stage, every trial, the hypervolume so far and the exported front. What <c>/api/studies</c> returns, one per run.
/// </summary>
public sealed record StudySnapshot(
    string Name, string Directory, string Status, string? Writer, IReadOnlyList<string> Objectives, string? Cost, string? CostUnit,
    int Trials, int Budget, int Screened, int Promoted, int PromoteTarget, int Finished, int FinalTarget, int Failed,
    double? BaselineAccuracy, double? BaselineCost, IReadOnlyList<double> Hypervolume, int? Best, IReadOnlyList<TrialPoint> Points, string? Problem)
{
    /// <summary>Reads the run in <paramref name="directory"/>; a run that cannot be read yet (no study, a damaged one) says why in <see cref="Problem"/>.</summary>
    public static StudySnapshot Read(string directory) => Read(DashboardStudy.Local(directory));

    /// <summary>Reads a study, local or on a server (<see cref="DashboardStudy"/>); one that cannot be read says why in <see cref="Problem"/>.</summary>
    public static StudySnapshot Read(DashboardStudy study)
    {
        string name = study.Name, path = study.Location, directory = study.Location;
        try
        {
            using var store = study.Open();
            // The full analysis (front, hypervolume) needs the baseline and the search space, stored once the search began;
            // before that, the stored trials alone. One read of the store either way.
            var result = store.Baseline is not null && store.Dimensions is not null
                ? study.Models is { } models ? PruningSearchResult.Load(store, models) : PruningSearchResult.Load(store) : null;
            var d = result?.Definition ?? store.Definition;
            var trials = result?.Trials ?? store.Trials();
            var baseline = result?.Baseline;
            string status = (result?.Status ?? store.LiveStatus).Name();
            var cost = d.Objectives.FirstOrDefault(o => o != ObjectiveKind.Accuracy);
            var front = result?.Front.Select(c => c.Trial).ToHashSet() ?? [];
            var points = trials.Select(t =>
            {
                var latest = t.Latest;
                double? Value(ObjectiveKind kind) => latest?.Values.FirstOrDefault(v => v.Kind == kind)?.Value;
                return new TrialPoint(t.Number, t.State.ToString().ToLowerInvariant(), latest?.Stage.ToString().ToLowerInvariant(), t.Kept,
                                      Value(ObjectiveKind.Accuracy), cost == default ? null : Value(cost), t.At(SearchStage.Final) is not null,
                                      front.Contains(t.Number), t.Error);
            }).ToList();
            return new StudySnapshot(name, directory, status, status == "running" ? store.Writer : null,
                d.Objectives.Select(o => o.Name()).ToList(),
                cost == default ? null : cost.Name(), cost == default ? null : cost.Info().Unit, trials.Count, d.Trials,
                trials.Count(t => t.At(SearchStage.Screening) is not null || t.State == TrialState.Failed),
                trials.Count(t => t.At(SearchStage.Promotion) is not null), d.Fidelity.PromoteCount,
                trials.Count(t => t.At(SearchStage.Final) is not null), d.Fidelity.FinalCount, trials.Count(t => t.State == TrialState.Failed),
                baseline?.Value(ObjectiveKind.Accuracy), cost == default || baseline is null ? null : baseline.Value(cost),
                result?.HypervolumeTrace ?? [], result?.Best()?.Trial, points, null);
        }
        catch (Exception e) when (e is FileNotFoundException or InvalidDataException or IOException or Microsoft.Data.Sqlite.SqliteException
                                       or Npgsql.NpgsqlException)
        {
            return new StudySnapshot(name, directory, "unreadable", null, [], null, null, 0, 0, 0, 0, 0, 0, 0, 0,
                                     null, null, [], null, [], e is FileNotFoundException or StudyNotFoundException ? $"no study yet at {path}" : e.Message);
        }
    }
}

/// <summary>
/// A study the dashboard follows: a run directory (its study.db, read beside the search that writes it) or a study on a
/// PostgreSQL server (read through the same store contract; its exported models, which the front's figures come with,
/// are read out of the store once into <see cref="Models"/>, a scratch folder of the dashboard's).
/// </summary>
public sealed record DashboardStudy(string Name, string Location, Func<StudyStore> Open, string? Models)
{
    public static DashboardStudy Local(string directory)
    {
        string full = Path.GetFullPath(directory);
        return new(Path.GetFileName(full.TrimEnd(Path.DirectorySeparatorChar)), full, () => StudyStore.Open(Path.Combine(full, PruningSearch.StudyFile)), null);
    }

    public static DashboardStudy Shared(StudyStorage storage, string name, string models) =>
        new(name, $"{storage.Location} (study {name})", () => StudyStore.Join(storage, name), models);
}
