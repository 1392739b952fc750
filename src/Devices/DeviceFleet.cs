namespace ParetoPrune.Devices;

/// <summary>
/// Several boards used as one device (<c>--device http://pi1:8642,http://pi2:8642</c>). Each board measures one model at a
/// time, since a second run beside it would disturb its timing and its power. By default a measurement goes to whichever
/// board is free first, so the boards measure in parallel. With <see cref="EveryBoard"/>, every board measures every model,
/// for per-board figures (<see cref="Measurement.Boards"/>). Either way each figure names its board.
/// </summary>
public sealed class DeviceFleet : IDevice
{
    readonly IReadOnlyList<(IDevice Device, string Label)> boards;
    readonly SemaphoreSlim[] busy;
    readonly SemaphoreSlim free;

    /// <param name="boards">Each board and a label telling it apart from the others (its address), which its figures carry.</param>
    /// <param name="everyBoard">Measure every model on every board (per-board figures); otherwise on the first free one.</param>
    public DeviceFleet(IReadOnlyList<(IDevice Device, string Label)> boards, bool everyBoard)
    {
        if (boards.Count == 0) throw new ArgumentException("a fleet needs at least one board");
        this.boards = boards;
        EveryBoard = everyBoard;
        busy = boards.Select(_ => new SemaphoreSlim(1, 1)).ToArray();
        free = new SemaphoreSlim(boards.Count, boards.Count);
    }

    public bool EveryBoard { get; }

    public string Name => $"{boards.Count} boards ({string.Join(", ", boards.Select(b => Labelled(b.Device.Name, b.Label)))})";

    static string Labelled(string device, string label) => device.Contains(label, StringComparison.Ordinal) ? device : $"{device} at {label}";

    public async Task<Measurement> MeasureAsync(byte[] onnxModel, int[] inputShape, MeasurementPlan plan, CancellationToken ct = default)
    {
        if (!EveryBoard)
        {
            await free.WaitAsync(ct);
            try
            {
                int board = Array.FindIndex(busy, b => b.Wait(0)); // one exists: the fleet semaphore counts the free boards
                try
                {
                    return await OnBoard(board, onnxModel, inputShape, plan, ct);
                }
                finally
                {
                    busy[board].Release();
                }
            }
            finally
            {
                free.Release();
            }
        }
        var all = await Task.WhenAll(Enumerable.Range(0, boards.Count).Select(async i =>
        {
            await busy[i].WaitAsync(ct);
            try
            {
                return await OnBoard(i, onnxModel, inputShape, plan, ct);
            }
            finally
            {
                busy[i].Release();
            }
        }));
        return Combine(all);
    }

    async Task<Measurement> OnBoard(int board, byte[] model, int[] inputShape, MeasurementPlan plan, CancellationToken ct)
    {
        var measurement = await boards[board].Device.MeasureAsync(model, inputShape, plan, ct);
        return measurement with { Provenance = measurement.Provenance.OnDevice(Labelled(measurement.Provenance.Device, boards[board].Label)) };
    }

    /// <summary>The boards' figures as one: the mean of their medians and energies (boards of one model differ by a few percent),
    /// each board's own kept in <see cref="Measurement.Boards"/>.</summary>
    static Measurement Combine(IReadOnlyList<Measurement> all)
    {
        var first = all[0];
        double median = all.Average(m => m.Latency.MedianMs);
        var latency = new LatencyDistribution(median, null, null, all.Average(m => m.Latency.MeanMs ?? m.Latency.MedianMs), null,
            all.Min(m => m.Latency.MinMs ?? m.Latency.MedianMs), all.Max(m => m.Latency.MaxMs ?? m.Latency.MedianMs), null, null, all.Sum(m => m.Latency.Runs));
        bool energy = all.All(m => m.Energy is not null);
        var figures = energy
            ? new EnergyFigures(all.Average(m => m.Energy!.JoulesPerInference), null, all.Average(m => m.Energy!.AverageWatts), null, null, null, null)
            : null;
        string? reason = energy ? null : string.Join("; ", all.Where(m => m.Energy is null).Select(m => $"{m.Provenance.Device}: {m.EnergyUnavailableReason}"));
        var provenance = first.Provenance.OnDevice($"mean of {all.Count} boards: {string.Join(", ", all.Select(m => m.Provenance.Device))}");
        return new Measurement(latency, all.Average(m => m.InferencesPerSecond), figures, reason, provenance) { Boards = all };
    }
}
