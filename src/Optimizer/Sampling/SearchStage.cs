using System.Text.Json.Serialization;

namespace ParetoPrune.Optimizer.Sampling;

/// <summary>
/// The fidelity ladder. Every trial is screened; the most promising are fine-tuned briefly; the front of those is
/// fine-tuned longer and exported. A value is only ever compared with values of the same stage.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<SearchStage>))]
public enum SearchStage
{
    /// <summary>Pruned, BatchNorm statistics recalibrated on a few training batches (EagleEye), no weight update.</summary>
    Screening,
    /// <summary>Fine-tuned for a few hundred steps.</summary>
    Promotion,
    /// <summary>Fine-tuned for the final budget (with distillation if asked), scored on validation and test, exported.</summary>
    Final,
}
