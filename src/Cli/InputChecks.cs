using System.CommandLine;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;

namespace ParetoPrune.Cli;

/// <summary>Checks made before any work starts, so that minutes of training are not thrown away at the end.</summary>
static class InputChecks
{
    /// <summary>That <paramref name="file"/> can be written: not a folder, in a folder that exists (created if its parent
    /// does) and takes new files.</summary>
    public static void WritableFile(FileInfo file, string option) => WritableFile(file, option, input: null, overwrite: false);

    /// <summary>As <see cref="WritableFile(FileInfo, string)"/>, and not the <paramref name="input"/> the command reads (the
    /// same path, or a link to it) unless <paramref name="overwrite"/>: replacing the model being pruned, quantized or
    /// fine-tuned is almost always a typo, and the original would be gone.</summary>
    /// <param name="what">What <paramref name="input"/> is, as the refusal names it.</param>
    public static void WritableFile(FileInfo file, string option, FileInfo? input, bool overwrite, string what = "the input model")
    {
        if (input is not null && !overwrite && SameFile(file, input))
            throw new UserInputException($"{option} {file.FullName} is {what}, which this would replace: write elsewhere, or give --overwrite to replace it");
        string path = file.FullName;
        if (Directory.Exists(path))
            throw new UserInputException($"{option} {path} is a folder; give a file name, e.g. {Path.Combine(path, "model.onnx")}");
        string folder = Path.GetDirectoryName(path)!;
        try
        {
            Directory.CreateDirectory(folder);
            string probe = Path.Combine(folder, $".paretoprune-write-test-{Guid.NewGuid():N}");
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserInputException($"{option} {path} cannot be written: {e.Message}");
        }
    }

    static bool SameFile(FileInfo a, FileInfo b)
    {
        static string Resolved(FileInfo f) => f.Exists && f.ResolveLinkTarget(returnFinalTarget: true) is { } target ? target.FullName : f.FullName;
        return string.Equals(Resolved(a), Resolved(b), StringComparison.Ordinal);
    }

    /// <summary>The option that lets a command replace its own input model.</summary>
    public static Option<bool> OverwriteOption() => new("--overwrite") { Description = "allow --out to be the input model, which is then replaced (atomically)" };

    /// <summary>That every float weight is a number: a NaN or infinite weight makes every output NaN, which scoring would
    /// report as 0 % accuracy rather than as the broken file it is.</summary>
    public static void FiniteWeights(ModelProto model, string path)
    {
        if (NonFiniteWeights(model).FirstOrDefault() is { } bad)
            throw new UserInputException($"{path}: initializer '{bad.Initializer}' holds {bad.Value} at index {bad.Index}; the model's weights must be finite numbers");
    }

    /// <summary>A non-finite value of a float initializer: which one, where, and what.</summary>
    public sealed record NonFiniteWeight(string Initializer, int Index, float Value, int Count);

    /// <summary>Every float initializer holding a NaN or an infinity, with its first such value and how many it holds.</summary>
    public static IEnumerable<NonFiniteWeight> NonFiniteWeights(ModelProto model)
    {
        foreach (var tensor in model.Graph.Initializer)
        {
            if (tensor.DataType != (int)TensorProto.Types.DataType.Float) continue;
            var values = OnnxTensors.ReadFloats(tensor);
            int bad = Array.FindIndex(values, v => !float.IsFinite(v));
            if (bad >= 0) yield return new NonFiniteWeight(tensor.Name, bad, values[bad], values.Count(v => !float.IsFinite(v)));
        }
    }
}
