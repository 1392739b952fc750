using System.CommandLine;
using ParetoPrune.Optimizer.Search;
using ParetoPrune.Optimizer.Studies;

namespace ParetoPrune.Cli;

/// <summary>
/// How every command that reads a study names it: a run directory (<c>RUN</c>, its <c>study.db</c>), or a study on a
/// PostgreSQL server (<c>--storage URL --study NAME</c>), as <c>search</c> and <c>worker</c> name it.
/// </summary>
sealed class StudyAddress
{
    public Argument<DirectoryInfo?> Run { get; } = new("run") { Description = "run directory of a search (its study.db)", Arity = ArgumentArity.ZeroOrOne };
    public Option<string?> Storage { get; } = new("--storage") { Description = "a study on a PostgreSQL server instead of RUN: postgresql://USER@HOST[:PORT]/DATABASE (with --study)" };
    public Option<string?> Study { get; } = new("--study") { Description = "the study's name on --storage" };

    public void AddTo(Command command)
    {
        command.Add(Run);
        command.Add(Storage);
        command.Add(Study);
    }

    /// <summary>The run directory, or null for a study on a server (<see cref="Server"/>).</summary>
    /// <exception cref="UserInputException">Neither or both given, or half of --storage/--study.</exception>
    public string? Directory(ParseResult parse)
    {
        var run = parse.GetValue(Run);
        string? storage = parse.GetValue(Storage), study = parse.GetValue(Study);
        if (storage is null && study is not null) throw new UserInputException("--study names a study on --storage; give --storage URL too");
        if (storage is not null && study is null) throw new UserInputException("--storage needs the study's name: --study NAME (`paretoprune studies list --storage URL` lists them)");
        if (storage is not null && run is not null)
            throw new UserInputException($"give a run directory ({run.Name}) or --storage URL --study NAME, not both");
        if (storage is null && run is null) throw new UserInputException("name the study: a run directory (RUN), or --storage URL --study NAME");
        return run?.FullName;
    }

    /// <summary>The server and study name when the study is on a server, else null.</summary>
    public (StudyStorage Storage, string Name)? Server(ParseResult parse) =>
        Directory(parse) is null ? (ParseStorage(parse.GetValue(Storage)!), parse.GetValue(Study)!) : null;

    /// <summary>The study's search, read from its run directory or from the server (its models written to
    /// <paramref name="directory"/>, where they are missing).</summary>
    public PruningSearchResult Load(ParseResult parse, string? directory)
    {
        if (Server(parse) is not { } server) return PruningSearchResult.Load(Directory(parse)!);
        using var store = StudyStore.Join(server.Storage, server.Name);
        return PruningSearchResult.Load(store, directory ?? throw new ArgumentNullException(nameof(directory)));
    }

    public static StudyStorage ParseStorage(string url)
    {
        try { return StudyStorage.Parse(url); }
        catch (ArgumentException e) { throw new UserInputException(e.Message); }
    }
}
