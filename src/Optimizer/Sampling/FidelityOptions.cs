using ParetoPrune.Objectives;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>How much work each stage of the fidelity ladder puts into a candidate.</summary>
public sealed record FidelityOptions
{
    /// <summary>Training batches over which a screened candidate's BatchNorm statistics are recomputed.</summary>
    public int RecalibrationBatches { get; init; } = 20;

    /// <summary>Images per batch for recalibration and fine-tuning.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>
    /// Fine-tuning steps of every screened candidate after recalibration (0: recalibration only). BN recalibration alone
    /// ranks candidates near chance once a budget prunes deeply (bench/RESULTS.md, "Screening fidelity"); a few dozen steps
    /// restore the ranking that longer fine-tuning gives, at a few seconds per trial.
    /// </summary>
    public int ScreeningSteps { get; init; } = 30;

    /// <summary>Screened candidates fine-tuned briefly, chosen to maximise the hypervolume of what is promoted. 0 skips the stage.</summary>
    public int PromoteCount { get; init; } = 10;

    /// <summary>Fine-tuning steps of a promoted candidate.</summary>
    public int PromotionSteps { get; init; } = 150;

    /// <summary>Promoted candidates fine-tuned with the final budget and exported, chosen to maximise the hypervolume of the
    /// promoted front (spread across the cost range): the models a user chooses from.</summary>
    public int FinalCount { get; init; } = 6;

    /// <summary>Epochs of the final fine-tuning.</summary>
    public int FinalEpochs { get; init; } = 1;

    /// <summary>A cap on the steps of each final epoch (a time budget); null runs whole epochs.</summary>
    public int? FinalStepsPerEpoch { get; init; }

    /// <summary>Distil from the unpruned model during the final fine-tuning.</summary>
    public bool Distill { get; init; }

    /// <summary>Peak learning rate of fine-tuning (SGD, Nesterov, cosine).</summary>
    public double LearningRate { get; init; } = 0.01;

    internal void Validate()
    {
        if (ScreeningSteps < 0) throw new ArgumentException($"screening steps cannot be negative ({ScreeningSteps})");
        if (RecalibrationBatches < 0) throw new ArgumentException($"recalibration batches cannot be negative ({RecalibrationBatches})");
        if (BatchSize < 1) throw new ArgumentException($"the batch size must be at least 1 ({BatchSize})");
        if (PromoteCount < 0 || FinalCount < 0) throw new ArgumentException("promotion and final counts cannot be negative");
        if (PromoteCount > 0 && FinalCount > PromoteCount)
            throw new ArgumentException($"the final stage fine-tunes promoted candidates only: {FinalCount} final (--final) cannot exceed {PromoteCount} promoted " +
                                        "(--promote); raise --promote, or lower --final");
        if (PromotionSteps < 1 || FinalEpochs < 1) throw new ArgumentException("promotion needs at least one step and the final stage one epoch");
        if (FinalStepsPerEpoch is < 1) throw new ArgumentException("final steps per epoch must be at least 1");
        if (!(LearningRate > 0)) throw new ArgumentException($"the learning rate must be positive ({LearningRate})");
    }

    string ScreeningFidelity => (RecalibrationBatches, ScreeningSteps) switch
    {
        (0, 0) => Fidelities.NoRetraining,
        (_, 0) => $"{Fidelities.BnRecalibrated} ({RecalibrationBatches} batches)",
        (0, var steps) => $"fine-tuned {steps} steps",
        var (batches, steps) => $"{Fidelities.BnRecalibrated} ({batches} batches), fine-tuned {steps} steps",
    };

    /// <summary>Whether screening values are accuracy after recalibration alone (the plots and report say so).</summary>
    public bool ScreeningIsRecalibrationOnly => ScreeningSteps == 0;

    public string FidelityOf(SearchStage stage) => stage switch
    {
        SearchStage.Screening => ScreeningFidelity,
        SearchStage.Promotion => $"fine-tuned {PromotionSteps} steps",
        _ => (FinalStepsPerEpoch is { } s ? $"fine-tuned {FinalEpochs}×{s} steps" : Fidelities.FineTuned(FinalEpochs)) + (Distill ? ", distilled" : ""),
    };
}
