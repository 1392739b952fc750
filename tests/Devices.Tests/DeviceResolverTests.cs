namespace ParetoPrune.Devices.Tests;

/// <summary>Devices opened by name, as <c>--device</c> and a .NET program name them.</summary>
public sealed class DeviceResolverTests : IDisposable
{
    readonly string directory = Directory.CreateTempSubdirectory("devices-").FullName;

    public void Dispose() => Directory.Delete(directory, true);

    [Fact]
    public async Task EstimatesComeFromTheShippedProfileOrAProfileFile()
    {
        using (var pi = await DeviceResolver.OpenAsync("pi4-estimate"))
        {
            Assert.Null(pi.Device);
            Assert.Same(DeviceProfile.RaspberryPi4B, pi.Profile);
            Assert.False(pi.MeasuresEnergy);
        }
        string path = Path.Combine(directory, "board.json");
        DeviceProfile.RaspberryPi4B.Save(path);
        using var file = await DeviceResolver.OpenAsync(path);
        Assert.Null(file.Device);
        Assert.Equal(DeviceProfile.RaspberryPi4B.Name, file.Profile!.Name);
    }

    [Fact]
    public async Task LocalMeasuresHereAndSaysWhyItHasNoEnergy()
    {
        using var local = await DeviceResolver.OpenAsync("local", meter: "none");
        Assert.IsType<HostDevice>(local.Device);
        Assert.Null(local.Profile);
        Assert.False(local.MeasuresEnergy);
        Assert.Equal("--meter none: no energy meter", local.EnergyNote);
    }

    [Theory]
    [InlineData("pi5-guess", null, null, "'pi5-guess' is none of them")]
    [InlineData("pi4-estimate", "rapl", null, "--meter applies to --device local")]
    [InlineData("http://pi1:8642,pi4-estimate", null, null, "must be device agents")]
    [InlineData("http://pi1:8642,http://PI1:8642", null, null, "lists a board twice")]
    [InlineData("http://pi1:8642", null, null, "needs --token-file")]
    public async Task WhatCannotBeOpenedIsRefusedWithTheReason(string spec, string? meter, string? token, string message)
    {
        var error = await Assert.ThrowsAsync<ArgumentException>(() => DeviceResolver.OpenAsync(spec, meter, token));
        Assert.Contains(message, error.Message);
    }
}
