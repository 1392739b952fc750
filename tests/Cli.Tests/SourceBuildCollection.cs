namespace ParetoPrune.Cli.Tests;

/// <summary>
/// Tests that build, pack or restore the repository's source projects (into their own bin/ and obj/) run one at a time:
/// two builds of one project at once race on its output files.
/// </summary>
[CollectionDefinition(nameof(SourceBuildCollection))]
public sealed class SourceBuildCollection;
