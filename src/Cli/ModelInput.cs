using System.CommandLine;

namespace ParetoPrune.Cli;

/// <summary>The model a command works on comes first, positionally, in every command; <c>search</c> and <c>compare</c> also
/// take it as <c>--model</c> (the name a <c>--config</c> file and earlier command lines use).</summary>
static class ModelInput
{
    public static Argument<FileInfo?> Argument(string description) => new("model") { Description = description, Arity = ArgumentArity.ZeroOrOne };

    /// <summary>The positional model or <c>--model</c>; refused when both are given and differ.</summary>
    public static FileInfo? Value(ParseResult parse, Argument<FileInfo?> positional, Option<FileInfo?> named)
    {
        var (first, option) = (parse.GetValue(positional), parse.GetValue(named));
        if (first is not null && option is not null && first.FullName != option.FullName)
            throw new UserInputException($"two models given: {first} and --model {option}; give one");
        return first ?? option;
    }
}
