using System.Diagnostics;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Optimizer.Networks;

namespace ParetoPrune.Cli.Tests;

/// <summary>Runs the <c>paretoprune</c> command in-process, or as the real executable for end-to-end checks.</summary>
static class CliRunner
{
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "onnx", name);

    /// <summary>The shipped SimpleCnn (embedded in the CLI for the demo), written into <paramref name="directory"/>.</summary>
    public static string ShippedModel(string directory)
    {
        string path = Path.Combine(directory, "simplecnn-fashion-mnist.onnx");
        using var resource = typeof(CliApp).Assembly.GetManifestResourceStream("simplecnn-fashion-mnist.onnx")!;
        using (var file = File.Create(path)) resource.CopyTo(file);
        return path;
    }

    /// <summary>An untrained tiny CNN that takes the sample's 28×28 images (normalisation inside, as train writes it), as <c>tiny.onnx</c>.</summary>
    public static string TinyModel(string directory)
    {
        string path = Path.Combine(directory, "tiny.onnx");
        var sample = DatasetCatalog.LoadEmbeddedSample();
        var model = new ModelInterface(sample.Train.ClassNames, 1, 28, 28, [0.28f], [0.35f]).Prepend(Architectures.SimpleCnn(1, 28, 10, [8, 8, 16, 16], seed: 3));
        OnnxModel.Save(model, path);
        return path;
    }

    /// <summary>Search options that make a search on <see cref="TinyModel"/> take seconds.</summary>
    public static readonly string[] SearchBudget = ["--data", "fashion-mnist-sample", "--validation-limit", "200", "--recalibration-batches", "2", "--batch-size", "32",
                                                    "--promote", "2", "--promotion-steps", "2", "--final", "1", "--final-max-steps-per-epoch", "2", "--threads", "2",
                                                    "--screening-steps", "2"];

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await CliApp.RunAsync(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    /// <summary>The real executable, left running: its standard output to read line by line, standard error drained.</summary>
    public static Process Start(params string[] args) => Start(new Dictionary<string, string?>(), args);

    /// <summary>The real executable, left running, with <paramref name="environment"/> added to this process's.</summary>
    public static Process Start(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.ErrorDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        return process;
    }

    public static (int ExitCode, string Output, string Error) RunProcess(params string[] args) => RunProcess(new Dictionary<string, string?>(), args);

    /// <summary>The real executable with <paramref name="environment"/> added to this process's (null removes a variable).</summary>
    public static (int ExitCode, string Output, string Error) RunProcess(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (name, value) in environment)
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "paretoprune.dll"));
        foreach (string arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        string stderr = process.StandardError.ReadToEnd();
        if (!process.WaitForExit(120_000)) { process.Kill(true); throw new TimeoutException("paretoprune did not finish in 2 minutes"); }
        return (process.ExitCode, stdout.Result, stderr);
    }

    /// <summary>Sends a signal to a process (SIGINT 2, SIGKILL 9), as a user or the kernel would.</summary>
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    public static extern int Signal(int pid, int signal);

    /// <summary>Reads the process's output until a line contains <paramref name="marker"/>.</summary>
    public static void WaitFor(Process process, string marker)
    {
        var seen = new List<string>();
        string? line;
        while ((line = process.StandardOutput.ReadLine()) is not null)
        {
            seen.Add(line);
            if (line.Contains(marker)) return;
        }
        Assert.Fail($"the process ended before '{marker}'; it printed:\n{string.Join("\n", seen)}");
    }
}
