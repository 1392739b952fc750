namespace ParetoPrune.Devices.Agent;

/// <summary>The shared secret between the device agent and its clients.</summary>
public static class AgentToken
{
    /// <summary>Shortest token accepted: 16 characters; <c>openssl rand -hex 32</c> gives 64.</summary>
    public const int MinimumLength = 16;

    /// <summary>Reads a token file (surrounding whitespace, such as the newline <c>openssl</c> writes, is dropped).</summary>
    /// <exception cref="ArgumentException">The file cannot be read or holds too short a token.</exception>
    public static string Read(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"cannot read the token file {path}: {e.Message}", nameof(path), e);
        }
        return Validate(text, $"the token file {path}");
    }

    /// <summary>The token without surrounding whitespace; throws when it is shorter than <see cref="MinimumLength"/>.</summary>
    internal static string Validate(string? token, string source)
    {
        string trimmed = token?.Trim() ?? "";
        if (trimmed.Length < MinimumLength)
            throw new ArgumentException($"{source} holds a token of {trimmed.Length} characters; it needs at least {MinimumLength} " +
                                        "(make one with: openssl rand -hex 32)");
        if (trimmed.Any(c => c < 0x21 || c > 0x7e))
            throw new ArgumentException($"{source} holds a token with spaces or non-ASCII characters, which an HTTP header cannot carry");
        return trimmed;
    }
}
