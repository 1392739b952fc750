using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.ML;
using ParetoPrune.Devices;
using ParetoPrune.Objectives;
using ParetoPrune.Objectives.Data;
using ParetoPrune.Objectives.Onnx;
using ParetoPrune.Objectives.Onnx.Proto;
using ParetoPrune.Objectives.Pareto;
using ParetoPrune.Optimizer.Pruning;
using ParetoPrune.Optimizer.Quantization;
using ParetoPrune.Optimizer.Reporting;
using ParetoPrune.Optimizer.Sampling;
using ParetoPrune.Optimizer.Studies;
using ParetoPrune.Optimizer.Training;

namespace ParetoPrune.Optimizer.Search;

/// <summary>What a search optimises and how hard it works. Every field has a usable default but the output directory.</summary>
public sealed record PruningSearchOptions
{
    /// <summary>The run directory: <c>study.db</c>, CSVs, plots, <c>report.html</c>, <c>models/</c>.</summary>
    public required string OutputDirectory { get; init; }

    public IReadOnlyList<ObjectiveKind> Objectives { get; init; } = [ObjectiveKind.Accuracy, ObjectiveKind.Macs];
    public ConstraintSet Constraints { get; init; } = ConstraintSet.Empty;

    /// <summary>How configurations are proposed; Bayesian optimisation by default.</summary>
    public SamplerKind Sampler { get; init; } = SamplerKind.Bayesian;

    /// <summary>Configurations screened (the budget of the search stage).</summary>
    public int Trials { get; init; } = 40;
    public int Seed { get; init; }

    /// <summary>Candidates evaluated at once; the cores are shared between them.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Which channels of a group survive: l1, l2, fpgm, bn, random, or data-driven taylor, apoz, mean-act, lrp, lrp-zplus.</summary>
    public ChannelCriterion Criterion { get; init; } = ChannelCriterion.L1;

    public SearchSpaceOptions Space { get; init; } = new();
    public FidelityOptions Fidelity { get; init; } = new();

    /// <summary>Where latency and energy come from; by default both are estimated for a Raspberry Pi 4B.</summary>
    public DeviceTargets Devices { get; init; } = DeviceTargets.Estimated(DeviceProfile.RaspberryPi4B);

    /// <summary>How long each candidate is timed on a measuring device (short: a search times many candidates).</summary>
    public MeasurementPlan Measurement { get; init; } = new() { WarmupRuns = 5, MinimumRuns = 20, TimeBudget = TimeSpan.FromSeconds(2) };

    /// <summary>Continue the study already in <see cref="OutputDirectory"/> (same question; the trial budget may grow).</summary>
    public bool Resume { get; init; }

    /// <summary>CPU threads of each trial's training; default: all cores divided among the workers. Fixed when the study is
    /// created (<see cref="StudyDefinition.ScreeningThreads"/>): a resumed or joined study trains as it was started.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// The settings a front end started the study with (e.g. the command line's options and values), stored with it so
    /// that it can be resumed from the study alone (<see cref="StudyStore.Invocation"/>); null stores nothing.
    /// </summary>
    public IReadOnlyDictionary<string, string[]>? Invocation { get; init; }

    /// <summary>
    /// Candidates fine-tuned at once in the promotion and final stages. They measure nothing on this machine, so unless
    /// <see cref="Threads"/> is set they take one candidate per core on one thread each: pruned networks are small, and
    /// two trainings on one thread each get 1.0–1.45× the images/s of one on two (bench/RESULTS.md, "The fine-tuning loop").
    /// </summary>
    internal int FineTuneWorkers => Threads is null ? Math.Max(Workers, Environment.ProcessorCount) : Workers;

    internal int ThreadsPer(int workers) => Threads ?? Math.Max(1, Environment.ProcessorCount / workers);

    /// <summary>
    /// Task specialisation (Balemans et al. 2022): class indices of the subset the deployed model must tell apart, in the
    /// order its outputs will have (null: all classes). The base model's classifier is cut to these classes and fine-tuned
    /// on them for <see cref="SpecialisationEpochs"/>, then searched; the baseline is that specialised model.
    /// <see cref="Comparison.ClassSubset.Resolve"/> turns class names into indices.
    /// </summary>
    public IReadOnlyList<int>? Classes { get; init; }

    /// <summary>Epochs of fine-tuning of the specialised base model on its classes (capped by the final stage's steps per epoch).</summary>
    public int SpecialisationEpochs { get; init; } = 1;

    /// <summary>
    /// Carry uniform pruning at the cost bound (the same fraction kept in every group, the largest that meets the bounds)
    /// through every stage beside the sampler's picks, fine-tuned alike, so the result shows the margin per-layer allocation
    /// gained over it on this model (<see cref="PruningSearchResult.UniformBaseline"/>) and the search's answer is never a
    /// model that uniform pruning beats on validation. Costs one more final fine-tuning; nothing without a cost bound.
    /// </summary>
    public bool UniformBaseline { get; init; } = true;

    /// <summary>
    /// With a cost bound, the share (0–1) of the Bayesian optimiser's proposals after its initial design that are placed on
    /// the budget surface (<see cref="BayesianSampler.BoundFocus"/>): spent where the answer a user deploys lies, rather
    /// than spread along the cheaper part of the front. Fixed when the study is created. All of them by default: on VGG-11
    /// under a parameter bound this took the search from +0.2 to +1.2 points over uniform pruning (bench/RESULTS.md,
    /// "Where allocation beats uniform pruning"); lower it for a front that reaches further below the bound.
    /// </summary>
    public double BoundFocus { get; init; } = 1;

    /// <summary>The allocation benchmark's trust-region lever (<see cref="BayesianSampler.TrustRegion"/>); not kept with
    /// the study, so a resumed search runs without it.</summary>
    internal bool TrustRegion { get; init; }

    /// <summary>
    /// With a cost bound and the Bayesian optimiser: before the first trial, each channel group is cut alone to its count
    /// under uniform pruning at the bound and fine-tuned for a screening's steps, and the accuracy it loses is measured
    /// (NetAdapt's sensitivity, once per group, kept with the study). The allocation those losses shape on the bound is the
    /// second design point and is carried through every stage beside uniform pruning, and promotion and the final stage
    /// take the most accurate trials under the bound rather than a spread along the front. On VGG-11 under a parameter
    /// bound this took the search from 91.84 % to 92.04 % (the greedy baseline's 92.09 %) for 12 % more training steps
    /// (bench/RESULTS.md, "Where allocation beats uniform pruning"). Off by default; fixed when the study is created.
    /// </summary>
    public bool SensitivityPrior { get; init; }

    /// <summary>The allocation benchmark's ablations of <see cref="SensitivityPrior"/>, part by part; not kept with the study,
    /// so a resumed search runs without them. Ignored where the study has the prior on.</summary>
    internal SensitivityLevers? Levers { get; init; }

    /// <summary>
    /// A PostgreSQL server to keep the study on, shared by worker processes on any machines; null keeps it in
    /// <c>study.db</c> in <see cref="OutputDirectory"/> (one process). On a server the search creates the study
    /// <see cref="StudyName"/>, or joins it if it exists and asks the same question; <see cref="OutputDirectory"/> then holds
    /// this process's copy of the models, plots and report.
    /// </summary>
    public StudyStorage? Storage { get; init; }

    /// <summary>The study's name on <see cref="Storage"/>; default: the output directory's name.</summary>
    public string? StudyName { get; init; }

    /// <summary>Join an existing study on <see cref="Storage"/> only (a worker): never create one.</summary>
    public bool JoinOnly { get; init; }

    /// <summary>
    /// The study's parallelism P, fixed when it is created: trial n is proposed knowing the results of trials 0 … n − P,
    /// so up to P trials are screened at once by all workers together, and the trials do not depend on how many workers
    /// ran them or in what order they finished. Default: <see cref="Workers"/> for a new study, the stored value otherwise.
    /// </summary>
    public int? Parallelism { get; init; }

    /// <summary>Heartbeats and polling between the workers of a study.</summary>
    public WorkerOptions Coordination { get; init; } = new();

    /// <summary>Also quantize every exported model to INT8 (calibrated on the training split), scored and measured as its own
    /// front member (<see cref="StageResult.Int8"/>); null for float models only. Part of the study.</summary>
    public QuantizationOptions? Quantize { get; init; }
}

/// <summary>The data of a search: candidates are recalibrated and fine-tuned on <see cref="Train"/>, ranked on
/// <see cref="Validation"/>, and the exported ones also scored on <see cref="Test"/>, which the search never looks at.</summary>
/// <param name="TrainedOn">What a model fine-tuned on <see cref="Train"/> records (<see cref="TrainingImages"/>); null records nothing.</param>
/// <param name="Caveat">Why the validation images may have been seen by the model in training; null when they are known unseen.</param>
public sealed record SearchData(Dataset Train, Dataset Validation, Dataset? Test, string Description, TrainingImages? TrainedOn = null, string? Caveat = null)
{
    /// <summary>Holds out a stratified validation split from the training images, of at most <paramref name="validationLimit"/>
    /// images (scoring is a large share of a screening trial; the rest stays for recalibration and fine-tuning).</summary>
    public static SearchData From(TrainTest data, double validationFraction = 0.1, int seed = 0, int? validationLimit = null)
    {
        if (validationLimit is { } limit) validationFraction = Math.Min(validationFraction, (double)limit / data.Train.Count);
        var (train, validation) = DatasetSplit.Stratified(data.Train, validationFraction, seed);
        return new SearchData(train, validation, data.Test, data.Description, TrainingImages.Of(data, validationFraction, seed));
    }

    /// <summary>
    /// Validation images that <paramref name="model"/> did not train on, as far as it records
    /// (<see cref="ValidationImages.Choose"/>), at most <paramref name="validationLimit"/> of them (a stratified subset).
    /// </summary>
    public static SearchData For(ModelProto model, TrainTest data, double validationFraction = 0.1, int seed = 0, int? validationLimit = null)
    {
        var chosen = ValidationImages.Choose(TrainingImages.Read(model), data, validationFraction, seed);
        var validation = chosen.Validation;
        string description = chosen.Description;
        if (validationLimit is { } limit && validation.Count > limit)
        {
            validation = DatasetSplit.Stratified(validation, (double)limit / validation.Count, seed).Validation.WithSource($"{validation.Source} [at most {limit}]");
            description += $"; ranked on {validation.Count:N0} of them (--validation-limit)";
        }
        return new SearchData(chosen.Train, validation, chosen.Test, description, chosen.TrainedOn, chosen.Caveat);
    }
}

/// <summary>Progress of a search, reported after every trial and stage.</summary>
/// <param name="Completed">Trials of the current stage finished (failed ones included).</param>
/// <param name="Total">Trials the current stage will run.</param>
/// <param name="FrontSize">Members of the current front (screening values during screening).</param>
/// <param name="Hypervolume">Hypervolume of the screening front, normalised by the baseline.</param>
/// <param name="Remaining">Estimated time left in this stage, from the mean duration so far.</param>
public sealed record SearchProgress(SearchStage Stage, int Completed, int Total, int Failed, int FrontSize, double Hypervolume,
                                    TimeSpan Elapsed, TimeSpan? Remaining, string Message);

/// <summary>
/// The search, ML.NET style: <c>var search = new PruningSearch(mlContext, options); var result = await search.RunAsync(model, data);</c>.
/// Progress goes to <c>mlContext.Log</c> (source "ParetoPrune.Search") and to the <see cref="IProgress{T}"/> given, if any.
/// Screens <see cref="PruningSearchOptions.Trials"/> configurations proposed by the sampler, fine-tunes the most promising
/// briefly, fine-tunes the front of those with the final budget and exports them; every trial is stored as it ends,
/// so a killed search resumes where it stopped.
/// </summary>
public sealed class PruningSearch
{
    readonly MLContext mlContext;
    readonly PruningSearchOptions options;

    public PruningSearch(MLContext mlContext, PruningSearchOptions options)
    {
        this.mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        if (options.Trials < 1) throw new ArgumentException($"a search needs at least one trial, not {options.Trials}");
        if (options.Workers < 1) throw new ArgumentException($"at least one worker, not {options.Workers}");
        if (options.Parallelism is < 1) throw new ArgumentException($"the parallelism must be at least 1, not {options.Parallelism}");
        if (options.JoinOnly && options.Storage is null) throw new ArgumentException("joining a study needs the server it is on (Storage)");
        options.Coordination.Validate();
        if (options.Objectives.Count == 0) throw new ArgumentException("at least one objective");
        if (!options.Objectives.Contains(ObjectiveKind.Accuracy) && !options.Constraints.Objectives.Contains(ObjectiveKind.Accuracy))
            throw new ArgumentException("the search needs accuracy as an objective or a constraint: without it, pruning everything would be best");
        options.Space.Validate();
        options.Fidelity.Validate();
        if (options.BoundFocus is < 0 or > 1 || double.IsNaN(options.BoundFocus))
            throw new ArgumentException($"the bound focus is a share of the proposals, from 0 to 1, not {options.BoundFocus}");
        if (options.SensitivityPrior && (options.Sampler != SamplerKind.Bayesian || options.BoundFocus == 0))
            throw new ArgumentException("the sensitivity prior shapes the Bayesian optimiser's design on the bound: it needs --sampler bo and a bound focus above 0");
    }

    public const string StudyFile = "study.db";

    /// <summary>Runs (or resumes) the search on a model file.</summary>
    /// <param name="stop">Finish the trials in flight, store them and return (Ctrl-C): the study can be resumed.</param>
    /// <param name="abort">Abandon trials in flight (a second Ctrl-C): they are re-run on resume.</param>
    public Task<PruningSearchResult> RunAsync(string modelPath, SearchData data, IProgress<SearchProgress>? progress = null,
                                              CancellationToken stop = default, CancellationToken abort = default)
    {
        var model = OnnxModel.Load(modelPath);
        byte[] bytes = File.ReadAllBytes(modelPath);
        return RunAsync(model, Path.GetFullPath(modelPath), bytes, data, progress, stop, abort);
    }

    /// <summary>Runs (or resumes) the search on a model in memory.</summary>
    public Task<PruningSearchResult> RunAsync(ModelProto model, SearchData data, IProgress<SearchProgress>? progress = null,
                                              CancellationToken stop = default, CancellationToken abort = default) =>
        RunAsync(model, "(in memory)", OnnxModel.ToBytes(model), data, progress, stop, abort);

    /// <summary>
    /// Joins a study on a server (<see cref="PruningSearchOptions.Storage"/>) and works on it with its other workers until
    /// every stage is done, as <c>paretoprune worker</c> does: the study's own settings (objectives, constraints, sampler,
    /// space, fidelity, seed, budget, specialisation, kernels) and its base model come from the store; this process gives
    /// the data and devices (described as the study's were: a different dataset or device is refused, naming it) and the
    /// folder its models and report go to.
    /// </summary>
    /// <exception cref="StudyNotFoundException">No study of that name on the server.</exception>
    public static Task<PruningSearchResult> JoinAsync(MLContext mlContext, StudyStorage storage, string name, SearchData data, DeviceTargets devices,
                                                      string outputDirectory, IProgress<SearchProgress>? progress = null,
                                                      CancellationToken stop = default, CancellationToken abort = default)
    {
        StudyDefinition study;
        byte[] model;
        using (var store = StudyStore.Join(storage, name))
        {
            study = store.Definition;
            model = store.Backend.GetArtifact(BaseModelArtifact)
                    ?? throw new InvalidDataException($"{store.Location} holds no copy of its base model to join it with");
        }
        var options = new PruningSearchOptions
        {
            OutputDirectory = outputDirectory, Storage = storage, StudyName = name, JoinOnly = true, Devices = devices,
            Objectives = study.Objectives, Constraints = ConstraintSet.Parse(study.Constraints), Sampler = Samplers.Parse(study.Sampler),
            Seed = study.Seed, Trials = study.Trials, Criterion = ChannelCriterion.Parse(study.Criterion), Space = study.Space,
            Fidelity = study.Fidelity, Classes = study.ClassSubset, Parallelism = study.Parallelism, Quantize = study.Quantize,
            UniformBaseline = study.UniformBaseline, BoundFocus = study.BoundFocus, SensitivityPrior = study.SensitivityPrior,
        };
        return new PruningSearch(mlContext, options).RunAsync(OnnxModel.Parse(model), study.ModelPath, model, data, progress, stop, abort);
    }

    /// <summary>The base model as given, kept in a shared study so that workers on other machines search the same file.</summary>
    public const string BaseModelArtifact = "model.onnx";

    async Task<PruningSearchResult> RunAsync(ModelProto model, string modelPath, byte[] modelBytes, SearchData data, IProgress<SearchProgress>? reporter,
                                             CancellationToken stop, CancellationToken abort)
    {
        using var log = new ProgressLog<SearchProgress>(mlContext, "ParetoPrune.Search", reporter, p =>
            $"{p.Stage.ToString().ToLowerInvariant()} {p.Completed}/{p.Total}" + (p.Failed > 0 ? $", {p.Failed} failed" : "") +
            $", front {p.FrontSize}, {p.Elapsed:hh\\:mm\\:ss}" + (p.Message.Length > 0 ? $": {p.Message}" : ""));
        IProgress<SearchProgress> progress = log;
        string hash = Convert.ToHexStringLower(SHA256.HashData(modelBytes));
        var watch = Stopwatch.StartNew();
        string directory = Path.GetFullPath(options.OutputDirectory);
        string storePath = Path.Combine(directory, StudyFile);
        var classes = options.Classes;
        if (classes is not null) CandidatePipeline.CheckClasses(classes, data.Train.ClassNames.Count);
        var searched = classes is null ? data : CandidatePipeline.SubsetData(data, classes);
        if (options.Quantize is not null) Int8Quantizer.CheckQuantizable(model); // before any trial's final stage finds out
        // The kernels a new study records: chosen here only where this process may create the study (a worker joins one, a
        // resumed search reads them back), so that a worker does not time kernels it will not use.
        var kernels = options.JoinOnly || options.Resume ? null : TorchRuntime.UseKernelsFor(model, Environment.ProcessorCount);
        var definition = new StudyDefinition(Path.GetFileName(directory), modelPath, hash, searched.Description, options.Objectives,
            options.Constraints.Select(c => c.ToString()).ToArray(), options.Sampler.Name(), options.Seed, options.Trials,
            options.Criterion.Name, options.Space, options.Fidelity, options.Devices.Description, searched.Train.ClassNames.Count, classes)
        {
            ValidationCaveat = searched.Caveat,
            Parallelism = options.Parallelism ?? options.Workers,
            ScreeningThreads = options.ThreadsPer(options.Parallelism ?? options.Workers),
            FineTuneThreads = options.ThreadsPer(options.FineTuneWorkers),
            Quantize = options.Quantize,
            UniformBaseline = options.UniformBaseline,
            BoundFocus = options.BoundFocus,
            SensitivityPrior = options.SensitivityPrior,
            Kernels = kernels?.Mode.Name(),
            KernelsChannelsLastBlock = kernels?.ChannelsLastBlock ?? 0,
        };

        bool existed = Directory.Exists(directory);
        StudyStore store;
        bool created;
        if (options.Storage is { } storage)
        {
            // A worker and a resumed search continue a study that exists; only a new search creates one.
            (store, created) = StudyStore.CreateOrJoin(storage, options.StudyName ?? Path.GetFileName(directory), definition, mayCreate: !options.JoinOnly && !options.Resume);
            Directory.CreateDirectory(directory);
        }
        else
        {
            if (!options.Resume) CheckFreshFolder(directory, modelPath);
            store = Resumable.CreateOrOpen(options.Resume, storePath, () => StudyStore.Create(storePath, definition), StudyStore.OpenForWriting,
                                           s => s.Definition.Differences(definition));
            created = !options.Resume;
        }
        bool searching = false;
        try
        {
            if (options.Parallelism is { } asked && asked != store.Definition.Parallelism)
                throw new ArgumentException($"{store.Location} was created with parallelism {store.Definition.Parallelism}, not {asked}: it is part of " +
                                            "the study (its trials depend on it); leave it out to use the study's");
            if (store.Definition.Trials != options.Trials) store.UpdateTrialBudget(options.Trials);
            if (store.Trials().Count is var held && held > options.Trials)
                progress?.Report(new SearchProgress(SearchStage.Screening, held, held, 0, 0, 0, watch.Elapsed, null,
                    $"the study already holds {held} trials, more than the {options.Trials} asked for: no trial is screened, and its later stages go on"));
            if (store.Definition.Kernels is { } studyKernels) TorchRuntime.UseKernels(KernelModes.Parse(studyKernels), store.Definition.KernelsChannelsLastBlock, model);
            if (options.Invocation is { } invocation) store.Invocation = invocation;
            if (store.Backend.IsShared && store.Backend.GetArtifact(BaseModelArtifact) is null) store.Backend.PutArtifact(BaseModelArtifact, modelBytes);

            string baselineFidelity = "as trained";
            if (classes is not null)
                (model, baselineFidelity) = Specialised(model, searched, classes, directory, store.Backend, progress, watch, abort);
            data = searched;

            var importance = options.Criterion.Create(data.Train, seed: options.Seed);
            var space = new SearchSpace(ChannelGroups.Analyze(model), importance, options.Space);
            var kinds = new HashSet<ObjectiveKind>(options.Objectives.Concat(options.Constraints.Objectives));
            var evaluator = new CandidateEvaluator(space, data.Train, data.Validation, data.Test, options.Fidelity, options.Devices,
                                                   options.Measurement, mlContext, kinds, directory,
                                                   store.Definition.ScreeningThreads ?? options.ThreadsPer(options.Workers),
                                                   store.Definition.FineTuneThreads ?? options.ThreadsPer(options.FineTuneWorkers), data.TrainedOn)
            {
                Quantize = store.Definition.Quantize,
            };
            store.Dimensions ??= space.Dimensions;
            store.Status = StudyStatus.Running;
            var stored = store.Baseline;
            // A worker joining a running study does not evaluate the unpruned model again: it says what it does instead.
            progress?.Report(new SearchProgress(SearchStage.Screening, 0, options.Trials, 0, 0, 0, watch.Elapsed, null,
                stored is null ? "evaluating the unpruned model"
                : store.Backend.IsShared ? $"joined {store.Location} (the unpruned model's figures are the study's); claiming trials"
                : "the unpruned model's figures are the study's; continuing"));
            var baseline = stored ?? store.SetBaselineOnce(await evaluator.BaselineAsync(baselineFidelity, abort));
            var baselineValues = baseline.ToDictionary();

            var problems = options.Constraints.Validate(baselineValues);
            if (problems.Count > 0) throw new ArgumentException($"the constraints cannot all hold: {string.Join("; ", problems)}");
            var problem = new SearchProblem(space, options.Objectives, options.Constraints, baselineValues, evaluator.Predicted,
                                            evaluator.Predict, data.Train.ClassNames.Count);
            CheckReachable(problem);
            if (store.Definition.SensitivityPrior && problem.CostBounds.Count == 0)
                throw new ArgumentException("the sensitivity prior probes each group at uniform pruning's count under a cost bound, and there is none: " +
                                            "give one (e.g. --constraint \"params<=0.25*baseline\") or leave out --sensitivity-prior");
            var sampler = Samplers.Create(options.Sampler);
            var levers = SensitivityLevers.Of(store.Definition, options);
            if (sampler is BayesianSampler)
                sampler = new BayesianSampler
                {
                    BoundFocus = store.Definition.BoundFocus, TrustRegion = options.TrustRegion,
                    Sensitivity = levers.Probe && store.Definition.BoundFocus > 0
                        ? Sensitivity(problem, evaluator, levers.ProbeSteps, store.Backend, progress, watch) : null,
                };
            if (sampler is GreedySampler)
            {
                GreedySampler.Check(problem);
                if (store.Definition.Parallelism > 1)
                    throw new ArgumentException("the greedy sampler chooses each iteration's incumbent from all of the previous iteration's results: use --parallel 1");
            }

            var loop = new SearchLoop(store, problem, evaluator, sampler, options, progress, watch);
            searching = true;
            bool completed = await loop.RunAsync(stop, abort);
            // A worker that stops leaves a shared study running while others work on it.
            if (completed) store.Status = StudyStatus.Finished;
            else if (store.LiveWorkers(options.Coordination.HeartbeatTimeout).Count == 0) store.Status = StudyStatus.Stopped;
            evaluator.Cleanup();
            var result = PruningSearchResult.Load(store, directory, mlContext);
            SearchReport.Write(result);
            return result;
        }
        catch (Exception e) when (created && !searching)
        {
            // Rejected before its first trial (an impossible constraint, a model the analysis refuses, …): leave nothing
            // behind, so that the corrected command runs as a new study rather than meeting this one.
            store.Backend.Delete();
            store.Dispose();
            RemoveRejectedStudy(directory, existed);
            if (Storage.IsFull(e)) throw Storage.Full(directory, "the search could not start; nothing was kept", e);
            throw;
        }
        catch (Exception e) when (Storage.IsFull(e) && e is not StoreFullException)
        {
            throw Storage.Full(directory, "the study keeps every result stored before it: free some space and resume the search", e);
        }
        finally
        {
            store.Dispose();
        }
    }

    /// <summary>A new study goes into a new or empty folder (or one holding only the model searched): never among
    /// someone's files, which the run's outputs would overwrite.</summary>
    static void CheckFreshFolder(string directory, string modelPath)
    {
        if (!Directory.Exists(directory)) return;
        if (File.Exists(Path.Combine(directory, StudyFile))) return; // StudyStore.Create refuses it, naming the study
        var others = Directory.EnumerateFileSystemEntries(directory).Where(e => Path.GetFullPath(e) != modelPath).Take(3).ToList();
        if (others.Count > 0)
            throw new ArgumentException($"{directory} is not empty and holds no study (it has {string.Join(", ", others.Select(Path.GetFileName))}" +
                                        $"{(others.Count == 3 ? ", …" : "")}): choose a new or empty output folder");
    }

    static void RemoveRejectedStudy(string directory, bool existed)
    {
        if (!existed)
        {
            Directory.Delete(directory, recursive: true);
            return;
        }
        foreach (string file in new[] { StudyFile, StudyFile + "-wal", StudyFile + "-shm", WriterLock.PathFor(StudyFile), SpecialisedBaseFile })
            if (File.Exists(Path.Combine(directory, file))) File.Delete(Path.Combine(directory, file));
        foreach (string folder in new[] { ".scratch", "models" })
            if (Directory.Exists(Path.Combine(directory, folder)) && !Directory.EnumerateFileSystemEntries(Path.Combine(directory, folder)).Any())
                Directory.Delete(Path.Combine(directory, folder));
    }

    /// <summary>Where a specialised search keeps its base model: written once, so a resumed search prunes the same model.</summary>
    public const string SpecialisedBaseFile = "models/specialised-base.onnx";

    /// <summary>The base model specialised to the class subset (read back when a resumed study made it already).</summary>
    /// <param name="subset">The data already restricted to the subset (<see cref="CandidatePipeline.SubsetData"/>).</param>
    /// <param name="backend">A shared study keeps the specialised model, so that every worker prunes the same one.</param>
    (ModelProto Model, string Fidelity) Specialised(ModelProto model, SearchData subset, IReadOnlyList<int> classes, string directory, IStudyStore backend,
                                                    IProgress<SearchProgress>? progress, Stopwatch watch, CancellationToken abort)
    {
        string fidelity = $"specialised: classifier cut to {classes.Count} classes" +
                          (options.SpecialisationEpochs > 0 ? $", fine-tuned {options.SpecialisationEpochs} epoch(s) on them" : "");
        string path = Path.Combine(directory, SpecialisedBaseFile);
        if (backend.IsShared && backend.GetArtifact(SpecialisedBaseFile) is { } stored)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            AtomicFile.WriteAllBytes(path, stored);
        }
        if (File.Exists(path)) return (OnnxModel.Load(path), fidelity);
        progress?.Report(new SearchProgress(SearchStage.Screening, 0, options.Trials, 0, 0, 0, watch.Elapsed, null,
            $"specialising the base model to classes {string.Join(", ", subset.Train.ClassNames)}"));
        var training = options.SpecialisationEpochs == 0 ? null : new TrainingOptions
        {
            Epochs = options.SpecialisationEpochs,
            MaxStepsPerEpoch = options.Fidelity.FinalStepsPerEpoch,
            BatchSize = options.Fidelity.BatchSize,
            LearningRate = options.Fidelity.LearningRate,
            Schedule = ScheduleKind.Cosine,
            Seed = options.Seed,
            Threads = options.Threads,
        };
        var specialised = CandidatePipeline.Specialise(model, classes, subset.Train, training, abort);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        OnnxModel.SetMetadata(specialised, "paretoprune.fidelity", fidelity);
        AtomicFile.WriteAllBytes(path, OnnxModel.ToBytes(specialised));
        if (backend.IsShared) backend.PutArtifact(SpecialisedBaseFile, OnnxModel.ToBytes(specialised));
        return (specialised, fidelity);
    }

    /// <summary>
    /// The sensitivity prior (<see cref="BayesianSampler.Sensitivity"/>): per group, the validation accuracy lost when it
    /// alone is cut to its count under uniform pruning at the bound (one channel fewer where that leaves it whole), against
    /// the whole model pruned of nothing and recalibrated alike. Probed once per study and stored with it; null without a
    /// bound that keeps the full model out.
    /// </summary>
    static IReadOnlyList<double>? Sensitivity(SearchProblem problem, CandidateEvaluator evaluator, int steps, IStudyStore backend,
                                               IProgress<SearchProgress>? progress, Stopwatch watch)
    {
        if (backend.Get(PruningSearchResult.SensitivityKey) is { } stored) return JsonSerializer.Deserialize<double[]>(stored);
        if (Samplers.UniformAtBound(problem) is not { } at) return null;
        var space = problem.Space;
        double reference = evaluator.Probe(space.Full, steps);
        var drops = new double[space.Count];
        for (int i = 0; i < space.Count; i++)
        {
            var dimension = space.Dimensions[i];
            progress?.Report(new SearchProgress(SearchStage.Screening, 0, 0, 0, 0, 0, watch.Elapsed, null,
                $"probing layer sensitivity {i + 1}/{space.Count} (pruned, recalibrated, {(steps > 0 ? $"{steps} steps" : "not trained")})"));
            var kept = space.Full;
            kept[i] = at[i] < dimension.Size ? at[i] : dimension.Size - 1;
            if (kept[i] < dimension.MinKeep) continue;
            drops[i] = Math.Max(0, reference - evaluator.Probe(kept, steps));
        }
        return JsonSerializer.Deserialize<double[]>(backend.PutIfAbsent(PruningSearchResult.SensitivityKey, JsonSerializer.Serialize(drops)));
    }

    /// <summary>A constraint on MACs, parameters or bytes that even the smallest configuration misses cannot be met by any trial: say so now.</summary>
    static void CheckReachable(SearchProblem problem)
    {
        var smallest = problem.Space.Dimensions.Select(d => d.MinKeep).ToArray();
        var values = problem.Predict(smallest);
        var missed = problem.ScreeningConstraints.Where(c => values.TryGetValue(c.Objective, out double v) && c.Violation(v, problem.Baseline) > 0).ToList();
        if (missed.Count > 0)
            throw new ArgumentException("no configuration can meet " + string.Join(" and ", missed.Select(c => $"'{c}'")) +
                $": even keeping only the minimum in every group ({string.Join(", ", missed.Select(c => $"{c.Objective.Name()} = {c.Objective.Format(values[c.Objective])}"))}, " +
                $"the baseline has {string.Join(", ", missed.Select(c => c.Objective.Format(problem.Baseline[c.Objective])))}). Loosen the bound or lower the minimum kept fraction.");
    }
}

/// <summary>
/// One process's share of a study: screening with the sampler, then promotion and final fine-tuning, claimed task by task
/// from the store (<see cref="IStudyStore"/>), so that any number of such processes, on any machines, work on one study.
/// <para>Trial n is proposed from the results of trials 0 … n − P and with trials n − P + 1 … n − 1 pending, where P is
/// the study's parallelism: the proposal is a function of n, not of which trials happen to have finished, so a study gives
/// the same trials whether one worker ran it or many. Stage selections are computed from stored values only, so every
/// worker computes the same ones.</para>
/// </summary>
sealed class SearchLoop(StudyStore store, SearchProblem problem, CandidateEvaluator evaluator, ISampler sampler,
                        PruningSearchOptions options, IProgress<SearchProgress>? progress, Stopwatch watch)
{
    readonly IStudyStore backend = store.Backend;
    readonly WorkerRecord me = WorkerIdentity.ForThisProcess();
    readonly int parallelism = store.Definition.Parallelism;
    readonly SemaphoreSlim deciding = new(1, 1);
    readonly Stopwatch stageWatch = Stopwatch.StartNew();
    Dictionary<int, Trial> trials = store.Trials().ToDictionary(t => t.Number);
    HashSet<(int, SearchStage)> done = [];
    SearchStage stage = SearchStage.Screening;

    /// <summary>The trials of each fine-tuning round, chosen once, when the rounds before it are done: what a round is chosen
    /// from cannot change after that, so neither polling nor another worker's progress recomputes it.</summary>
    readonly List<int>?[] rounds = new List<int>?[3];

    /// <summary>Uniform pruning at the bound, carried through every stage (<see cref="StudyDefinition.UniformBaseline"/>): the
    /// study's setting, so a resumed or joined study carries it as it was created; null without a cost bound.</summary>
    readonly int[]? uniformBaseline = store.Definition.UniformBaseline ? Samplers.UniformAtBound(problem) : null;

    /// <summary>What of <see cref="PruningSearchOptions.SensitivityPrior"/> this study uses.</summary>
    readonly SensitivityLevers levers = SensitivityLevers.Of(store.Definition, options);

    /// <summary>Configurations carried through every stage whatever the selections (<see cref="WithCarried"/>): uniform
    /// pruning at the bound, and the sensitivity-shaped design point where the prior carries it.</summary>
    readonly int[][] carried = [.. new[]
    {
        store.Definition.UniformBaseline ? Samplers.UniformAtBound(problem) : null,
        SensitivityLevers.Of(store.Definition, options).Carry && sampler is BayesianSampler { Sensitivity: { } drops } ? Samplers.SensitivityShaped(problem, drops) : null,
    }.OfType<int[]>()];
    int screeningHere, finishedHere, doneAtStart = -1;
    bool finished;

    /// <summary>Work for one of this process's slots.</summary>
    abstract record Work
    {
        public sealed record Screen(Trial Trial, double Proposing) : Work;
        public sealed record FineTune(Trial Trial, SearchStage Stage) : Work;
        public sealed record Wait : Work;
        public sealed record Done : Work;
    }

    /// <summary>True when every stage finished; false when stopped early.</summary>
    public async Task<bool> RunAsync(CancellationToken stop, CancellationToken abort)
    {
        backend.Register(me);
        if (uniformBaseline is not null) backend.PutIfAbsent(PruningSearchResult.UniformBaselineKey, SearchSpace.Key(uniformBaseline));
        using var failed = CancellationTokenSource.CreateLinkedTokenSource(abort);
        // A thread of its own, not a pool timer: trainings fill the pool's threads, and a late beat would get this worker
        // taken for dead and its trials run twice.
        using var beating = new CancellationTokenSource();
        var heartbeat = new Thread(() =>
        {
            while (!beating.Token.WaitHandle.WaitOne(options.Coordination.HeartbeatInterval))
            {
                try { backend.Heartbeat(me.Id); }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.Data.Common.DbException) { } // the next beat retries; claims fail loudly
            }
        }) { IsBackground = true, Name = "study heartbeat" };
        heartbeat.Start();
        try
        {
            int slots = Math.Max(options.Workers, options.FineTuneWorkers);
            var running = Enumerable.Range(0, slots).Select(_ => Task.Run(() => SlotAsync(stop, failed), CancellationToken.None)).ToList();
            await Task.WhenAll(running);
            return finished;
        }
        finally
        {
            beating.Cancel();
            heartbeat.Join();
            try { backend.Retire(me.Id); }
            catch (Exception e) when (e is IOException or InvalidOperationException or System.Data.Common.DbException) { } // found dead by its heartbeat instead
        }
    }

    async Task SlotAsync(CancellationToken stop, CancellationTokenSource failed)
    {
        var abort = failed.Token;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                abort.ThrowIfCancellationRequested();
                var work = await NextAsync(abort);
                switch (work)
                {
                    case Work.Done:
                        return;
                    case Work.Wait:
                        try { await Task.Delay(options.Coordination.PollInterval, stop).WaitAsync(abort); }
                        catch (OperationCanceledException) when (stop.IsCancellationRequested && !abort.IsCancellationRequested) { return; }
                        break;
                    case Work.Screen s:
                        var screened = await Screen(s.Trial, s.Proposing, abort);
                        await FinishAsync(screened, SearchStage.Screening, abort);
                        break;
                    case Work.FineTune f:
                        var tuned = await FineTune(f.Trial, f.Stage, abort);
                        await FinishAsync(tuned, f.Stage, abort);
                        break;
                }
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            failed.Cancel(); // the other slots stop too; the first failure is what the search reports
            throw;
        }
    }

    /// <summary>Stores a finished task (its exported model first, where the store is shared) and reports it.</summary>
    async Task FinishAsync(Trial trial, SearchStage stage, CancellationToken abort)
    {
        if (stage == SearchStage.Final && backend.IsShared)
            foreach (string model in trial.At(SearchStage.Final)?.ModelPaths ?? [])
                backend.PutArtifact(model.Replace('\\', '/'), File.ReadAllBytes(Path.Combine(evaluator.RunDirectory, model)));
        await deciding.WaitAsync(abort);
        try
        {
            if (stage == SearchStage.Screening) screeningHere--;
            // A task this worker was taken for dead on and another worker finished first keeps that worker's result.
            if (backend.Complete(trial, stage, me.Id)) trials[trial.Number] = trial;
            else trials[trial.Number] = backend.Trials().Single(t => t.Number == trial.Number);
            done.Add((trial.Number, stage));
            finishedHere++;
            var shown = trials[trial.Number];
            if (stage == SearchStage.Screening) Report($"trial {trial.Number}: " + Describe(shown));
            else ReportStage(stage, $"trial {trial.Number}: " + Describe(shown));
        }
        finally
        {
            deciding.Release();
        }
    }

    /// <summary>The next piece of work for a slot, decided one slot at a time, from the store's current state.</summary>
    async Task<Work> NextAsync(CancellationToken abort)
    {
        await deciding.WaitAsync(abort);
        try
        {
            if (finished) return new Work.Done();
            // Tasks first: a task done implies its result, stored in the same transaction, so the trials read after them
            // hold every result the done tasks promise (read the other way round, a round of fine-tuning could look
            // finished before its last result is seen, and the next round would be chosen without it).
            done = backend.Tasks().Where(t => t.Done).Select(t => (t.Trial, t.Stage)).ToHashSet();
            trials = backend.Trials().ToDictionary(t => t.Number);
            if (doneAtStart < 0) doneAtStart = trials.Values.Count(t => t.State != TrialState.Running);
            foreach (var worker in backend.Workers().Where(WorkerIdentity.IsDeadHere)) backend.Retire(worker.Id);
            var timeout = options.Coordination.HeartbeatTimeout;

            bool mayScreen = screeningHere < options.Workers;
            // Trials left running by a dead worker (a killed process included) are re-run first, with the configuration they had.
            var orphans = trials.Values.Where(t => t.State == TrialState.Running).Select(t => t.Number).ToList();
            if (mayScreen && backend.Claim(me.Id, SearchStage.Screening, orphans, timeout) is { } reclaimed)
            {
                screeningHere++;
                return new Work.Screen(trials[reclaimed.Trial], 0);
            }
            if (!ScreeningFinished())
            {
                // Once the sampler's budget is spent, the uniform baseline joins as one more trial where the sampler did not
                // propose it (the Bayesian optimiser's design opens with it).
                bool spent = trials.Count >= options.Trials || backend.Get(ExhaustedKey) is not null;
                if (!mayScreen || (spent && !UniformBaselineMissing(trials.Values))) return new Work.Wait();
                var proposing = Stopwatch.StartNew();
                bool exhausted = false;
                var trial = backend.Propose(me.Id, all =>
                {
                    if (spent) return UniformBaselineMissing(all) ? new Proposal(UniformSampler.SamplerName, uniformBaseline!) : null;
                    var proposal = ProposeNext(all, out exhausted);
                    return proposal is null ? null : new Proposal(sampler.Name, proposal);
                });
                if (exhausted) backend.PutIfAbsent(ExhaustedKey, "true");
                if (trial is null) return new Work.Wait();
                trials[trial.Number] = trial;
                screeningHere++;
                return new Work.Screen(trial, proposing.Elapsed.TotalSeconds);
            }

            var steps = new (SearchStage Stage, Func<List<Trial>> Select)[]
            {
                (SearchStage.Promotion, () => options.Fidelity.PromoteCount > 0 ? WithCarried(SelectForPromotion(), SearchStage.Screening) : []),
                (SearchStage.Promotion, SecondPromotionRound),
                (SearchStage.Final, () => options.Fidelity.FinalCount > 0 ? WithCarried(SelectForFinal(), FinalSource) : []),
            };
            for (int round = 0; round < steps.Length; round++)
            {
                var next = steps[round].Stage;
                if (rounds[round] is null)
                {
                    rounds[round] = [.. steps[round].Select().Select(t => t.Number)];
                    backend.AddTasks(next, rounds[round]!);
                }
                var open = rounds[round]!.Where(n => !done.Contains((n, next))).ToList();
                if (open.Count == 0) continue;
                if (stage != next)
                {
                    (stage, finishedHere) = (next, 0);
                    stageWatch.Restart();
                }
                if (backend.Claim(me.Id, next, open, timeout) is { } claimed) return new Work.FineTune(trials[claimed.Trial], next);
                return new Work.Wait();
            }
            finished = true;
            return new Work.Done();
        }
        finally
        {
            deciding.Release();
        }
    }

    /// <summary>Set once the sampler found no new configuration: screening ends there, whatever the budget.</summary>
    const string ExhaustedKey = "screening-exhausted";

    bool ScreeningFinished() =>
        (trials.Count >= options.Trials || backend.Get(ExhaustedKey) is not null) && !UniformBaselineMissing(trials.Values)
        && trials.Values.All(t => t.State != TrialState.Running);

    bool IsUniformBaseline(Trial trial) => uniformBaseline is not null && trial.Kept.SequenceEqual(uniformBaseline);

    bool IsCarried(Trial trial) => carried.Any(trial.Kept.SequenceEqual);

    bool UniformBaselineMissing(IEnumerable<Trial> all) => uniformBaseline is not null && !all.Any(IsUniformBaseline);

    /// <summary>A stage's picks, with each carried configuration added where it has a result at <paramref name="source"/> and
    /// was not picked: it is fine-tuned alike at every stage, whatever the sampler found.</summary>
    List<Trial> WithCarried(List<Trial> picks, SearchStage source)
    {
        foreach (var kept in carried)
            if (trials.Values.FirstOrDefault(t => t.Kept.SequenceEqual(kept)) is { } trial && trial.At(source) is not null && !picks.Any(t => t.Number == trial.Number))
                picks.Add(trial);
        return picks;
    }

    /// <summary>
    /// The configuration of trial n = <paramref name="all"/>.Count, or null when it is not its turn: trials 0 … n − P must
    /// have finished (their results are its history; n − P + 1 … n − 1 are pending). Null with <paramref name="exhausted"/>
    /// when the space holds nothing new.
    /// </summary>
    int[]? ProposeNext(IReadOnlyList<Trial> all, out bool exhausted)
    {
        exhausted = false;
        int n = all.Count;
        if (n >= options.Trials) return null;
        int known = Math.Max(0, n - parallelism + 1);
        if (all.Take(known).Any(t => t.State == TrialState.Running)) return null;
        var history = all.Take(known).Select(t => new Observation(t.Kept, t.State == TrialState.Complete ? t.At(SearchStage.Screening)?.ToDictionary() : null)).ToList();
        var pending = all.Skip(known).Select(t => t.Kept).ToList();
        var proposal = sampler.Propose(new SamplerContext(problem, history, pending, options.Seed, options.Trials), 1);
        if (proposal.Count == 0) exhausted = true;
        return proposal.Count == 0 ? null : proposal[0];
    }

    async Task<Trial> Screen(Trial trial, double proposing, CancellationToken abort)
    {
        try
        {
            var result = await evaluator.ScreenAsync(trial.Number, trial.Kept, abort);
            var seconds = new Dictionary<string, double>(result.Seconds) { ["propose"] = proposing };
            return trial.With(result with { Seconds = seconds });
        }
        catch (Exception e) when (e is not OperationCanceledException && !Storage.IsFull(e))
        {
            return trial with { State = TrialState.Failed, Error = $"{e.GetType().Name}: {e.Message}" };
        }
    }
    /// <summary>The first half of the promotion: the screened trials whose set covers the most hypervolume at the screening
    /// fidelity (all of it when there is nothing to learn from yet: fewer than 3 in each half, or no accuracy to map).</summary>
    List<Trial> SelectForPromotion()
    {
        var screened = trials.Values.Where(t => t.At(SearchStage.Screening) is not null).OrderBy(t => t.Number).ToList();
        int count = options.Fidelity.PromoteCount;
        bool twoRounds = count >= 6 && screened.Any(t => Accuracy(t.At(SearchStage.Screening)!) is not null);
        return Best(screened, SearchStage.Screening, twoRounds ? (count + 1) / 2 : count);
    }

    /// <summary>
    /// The second half of the promotion, steered by what the first half revealed: screening accuracy is mapped to promoted
    /// accuracy by a line fitted on the first half's pairs (<see cref="FidelityMap"/>), and the screened trials whose predicted
    /// promoted values add the most hypervolume to the first half's, against the reference of <see cref="ReferenceForFineTuned"/>
    /// (the accuracy bound lowered by the lift the first half got from promotion), are promoted. So the second half goes where fine-tuning is expected to pay, not to cheap configurations that screening
    /// liked but no amount of fine-tuning brings over the accuracy bound. Computed from stored values only: a resumed search
    /// picks the same trials.
    /// </summary>
    List<Trial> SecondPromotionRound()
    {
        var first = SelectForPromotion();
        int count = options.Fidelity.PromoteCount - first.Count;
        if (count <= 0) return [];
        var promoted = first.Select(t => trials[t.Number]).Where(t => t.At(SearchStage.Promotion) is not null).ToList();
        var map = FidelityMap.Fit(promoted.Select(t => (Short: Accuracy(t.At(SearchStage.Screening)!), Long: Accuracy(t.At(SearchStage.Promotion)!)))
                                          .Where(p => p.Short is not null && p.Long is not null).Select(p => (p.Short!.Value, p.Long!.Value)).ToList());
        if (map is null) return [];
        var chosen = first.Select(t => t.Number).ToHashSet();
        var rest = trials.Values.Where(t => !chosen.Contains(t.Number) && !IsCarried(t) && t.At(SearchStage.Screening) is { } r && Accuracy(r) is not null)
                                .OrderBy(t => t.Number).ToList();
        var hard = problem.ScreeningConstraints;
        var predicted = rest.Select(t =>
        {
            var values = new Dictionary<ObjectiveKind, double>(t.At(SearchStage.Screening)!.ToDictionary());
            values[ObjectiveKind.Accuracy] = map.Predict(values[ObjectiveKind.Accuracy]);
            return values;
        }).ToList();
        if (levers.SelectMostAccurate) // the mapped accuracy ranks as the screened one does
            return [.. rest.Select((t, i) => (t, i)).Where(p => hard.TotalViolation(predicted[p.i], problem.Baseline) == 0)
                           .OrderByDescending(p => predicted[p.i][ObjectiveKind.Accuracy]).Take(count).Select(p => p.t)];
        var given = promoted.Where(t => hard.TotalViolation(t.At(SearchStage.Promotion)!.ToDictionary(), problem.Baseline) == 0)
                            .Select(t => problem.Normalised.ToPoint(t.At(SearchStage.Promotion)!.ToDictionary())).ToList();
        var picks = HypervolumeSubset.Greedy(predicted.Select(v => problem.Normalised.ToPoint(v)).ToList(),
            predicted.Select(v => hard.TotalViolation(v, problem.Baseline)).ToList(), ReferenceForFineTuned(promoted), count,
            predicted.Select(v => -v[ObjectiveKind.Accuracy]).ToList(), given);
        return picks.Select(i => rest[i]).ToList();
    }

    /// <summary>
    /// The hypervolume reference for choosing among promoted (briefly fine-tuned) candidates: the final stage's, its
    /// accuracy bound lowered by the lift that the promotion gave over screening (the median over promoted trials), since
    /// the final fine-tuning lifts them further. A candidate just below the bound after a few hundred steps is then still
    /// one worth the final budget; one far below it is not.
    /// </summary>
    /// <param name="promoted">The promoted trials the lift is measured on (fixed sets, so a resumed search chooses alike).</param>
    double[] ReferenceForFineTuned(IEnumerable<Trial> promoted)
    {
        var reference = (double[])problem.ReferenceAt(SearchStage.Final).Clone();
        int accuracy = problem.Objectives.ToList().IndexOf(ObjectiveKind.Accuracy);
        var lifts = promoted.Where(t => t.At(SearchStage.Promotion) is not null)
            .Select(t => Accuracy(t.At(SearchStage.Promotion)!) - Accuracy(t.At(SearchStage.Screening)!)).Where(l => l is not null)
            .Select(l => l!.Value).Order().ToList();
        if (accuracy < 0 || lifts.Count == 0) return reference;
        double lift = Math.Max(0, lifts[lifts.Count / 2]);
        // Normalised accuracy is −accuracy / baseline accuracy (minimised): a lower bound moves the reference up.
        reference[accuracy] += lift / problem.Baseline[ObjectiveKind.Accuracy];
        return reference;
    }

    static double? Accuracy(StageResult result) => result.Values.FirstOrDefault(v => v.Kind == ObjectiveKind.Accuracy)?.Value;

    /// <summary>The promoted trials for the final budget (<see cref="Best"/>): the most accurate, then those that cover the most
    /// hypervolume above the accuracy bound lowered by the promotion's lift, spread across the cost range, so the exported
    /// front is one a user can choose from.</summary>
    List<Trial> SelectForFinal()
    {
        var promoted = trials.Values.Where(t => t.At(FinalSource) is not null).OrderBy(t => t.Number).ToList();
        return Best(promoted, FinalSource, options.Fidelity.FinalCount);
    }

    SearchStage FinalSource => options.Fidelity.PromoteCount > 0 ? SearchStage.Promotion : SearchStage.Screening;

    /// <summary>
    /// The most accurate candidate meeting the constraints, then the <paramref name="count"/> − 1 whose values at
    /// <paramref name="stage"/> add the most hypervolume to it (greedy;
    /// <see cref="HypervolumeSubset"/>): each pick is where the front gains most, so the picks spread along it rather than
    /// crowd one end. Candidates below an accuracy bound (which short fine-tuning may not have reached yet) are not
    /// discarded: when nothing above the bound adds hypervolume, the picks spread over them too; candidates that break a
    /// cost bound come last, least violating first.
    /// </summary>
    List<Trial> Best(List<Trial> candidates, SearchStage stage, int count)
    {
        if (count == 0 || candidates.Count == 0) return [];
        var points = candidates.Select(t => problem.Normalised.ToPoint(t.At(stage)!.ToDictionary())).ToList();
        // Only bounds that hold at every fidelity (costs) make a candidate infeasible here: one below an accuracy bound after
        // short fine-tuning may well meet it after longer fine-tuning, so it lies outside the reference box instead.
        var violations = candidates.Select(t => problem.ScreeningConstraints.TotalViolation(t.At(stage)!.ToDictionary(), problem.Baseline)).ToList();
        var lessAccurateLater = candidates.Select(t => -(Accuracy(t.At(stage)!) ?? 0)).ToList();
        // The most accurate candidate that meets the constraints goes first: it is what `export` and Best() hand a user
        // who asked "the best model under my budget", and a hypervolume pick need not include it.
        int first = !problem.Objectives.Contains(ObjectiveKind.Accuracy) ? -1
            : Enumerable.Range(0, candidates.Count).Where(i => violations[i] == 0 && Accuracy(candidates[i].At(stage)!) is not null)
                .OrderBy(i => lessAccurateLater[i]).ThenBy(i => points[i].Sum()).DefaultIfEmpty(-1).First();
        if (levers.SelectMostAccurate && first >= 0)
            return [.. Enumerable.Range(0, candidates.Count).OrderBy(i => violations[i] > 0).ThenBy(i => violations[i]).ThenBy(i => lessAccurateLater[i])
                                 .Take(count).Select(i => candidates[i])];
        var reference = stage == SearchStage.Screening ? problem.ReferenceAt(SearchStage.Screening) : ReferenceForFineTuned(candidates);
        var others = Enumerable.Range(0, candidates.Count).Where(i => i != first).ToList();
        var rest = HypervolumeSubset.Greedy(others.Select(i => points[i]).ToList(), others.Select(i => violations[i]).ToList(), reference,
                                            first < 0 ? count : count - 1, others.Select(i => lessAccurateLater[i]).ToList(),
                                            given: first < 0 ? null : [points[first]]);
        return [.. (first < 0 ? [] : new[] { candidates[first] }), .. rest.Select(k => candidates[others[k]])];
    }

    async Task<Trial> FineTune(Trial trial, SearchStage stage, CancellationToken abort)
    {
        try
        {
            var result = await evaluator.FineTuneAsync(trial.Number, trial.Kept, stage, trial.At(SearchStage.Screening)!, abort);
            return trial.With(result);
        }
        catch (Exception e) when (e is not OperationCanceledException && !Storage.IsFull(e))
        {
            // The screening result stands; the stage's failure is recorded on the trial.
            return trial with { Error = $"{stage}: {e.GetType().Name}: {e.Message}" };
        }
    }

    string Describe(Trial trial)
    {
        if (trial.State == TrialState.Failed) return "failed: " + trial.Error;
        var latest = trial.Latest!;
        return string.Join(", ", latest.Values.Where(v => problem.Objectives.Contains(v.Kind)).Select(v => $"{v.Kind.Name()} {v.Kind.Format(v.Value)}"))
               + $" ({latest.Stage.ToString().ToLowerInvariant()}, {latest.TotalSeconds:0.0} s)"
               + (latest.KernelNotes is { Count: > 0 } notes ? "; " + string.Join("; ", notes) : "");
    }

    void Report(string message)
    {
        int finishedTrials = trials.Values.Count(t => t.State != TrialState.Running);
        int failed = trials.Values.Count(t => t.State == TrialState.Failed);
        var (frontSize, hypervolume) = ScreeningFront();
        int fresh = finishedTrials - doneAtStart;
        // The uniform baseline is one more trial where the sampler's own trials do not include it.
        int total = Math.Max(trials.Count, options.Trials + (uniformBaseline is not null && !trials.Values.Any(t => t.Number < options.Trials && IsUniformBaseline(t)) ? 1 : 0));
        TimeSpan? remaining = fresh > 0 ? stageWatch.Elapsed / fresh * Math.Max(0, total - finishedTrials) : null;
        progress?.Report(new SearchProgress(SearchStage.Screening, finishedTrials, total, failed, frontSize, hypervolume, watch.Elapsed, remaining, message));
    }

    /// <summary>Progress of a fine-tuning stage: its tasks done (by any worker) of those selected so far.</summary>
    void ReportStage(SearchStage reported, string message)
    {
        var (frontSize, hypervolume) = ScreeningFront();
        var tasks = backend.Tasks().Where(t => t.Stage == reported).ToList();
        int completed = tasks.Count(t => t.Done), total = tasks.Count;
        TimeSpan? remaining = finishedHere > 0 ? stageWatch.Elapsed / finishedHere * (total - completed) : null;
        progress?.Report(new SearchProgress(reported, completed, total, 0, frontSize, hypervolume, watch.Elapsed, remaining, message));
    }
    (int Size, double Hypervolume) ScreeningFront()
    {
        var feasible = trials.Values.Select(t => t.At(SearchStage.Screening)?.ToDictionary())
            .Where(v => v is not null && problem.ScreeningConstraints.TotalViolation(v, problem.Baseline) == 0)
            .Select(v => problem.Normalised.ToPoint(v!)).ToList();
        if (feasible.Count == 0) return (0, 0);
        return (NonDominatedSorting.FirstFront(feasible).Length, Hypervolume.Compute(feasible, problem.ScreeningReference));
    }
}

/// <summary>The parts of <see cref="PruningSearchOptions.SensitivityPrior"/>, separable for the allocation benchmark's ablations.</summary>
/// <param name="Probe">Probe each group once before the first trial and shape the second design point by the losses.</param>
/// <param name="ProbeSteps">Fine-tuning steps of each probe before it is scored (0: recalibrated only).</param>
/// <param name="Carry">Carry the shaped point through every stage beside the uniform baseline.</param>
/// <param name="SelectMostAccurate">Promote and finish the most accurate trials under the bound, not a front's spread.</param>
internal sealed record SensitivityLevers(bool Probe, int ProbeSteps, bool Carry, bool SelectMostAccurate)
{
    static readonly SensitivityLevers None = new(false, 0, false, false);

    /// <summary>The study's prior (all parts, the probes fine-tuned as long as a screening) where it has it on; else the
    /// benchmark's ablation, if any.</summary>
    public static SensitivityLevers Of(StudyDefinition study, PruningSearchOptions options) =>
        study.SensitivityPrior ? new(true, study.Fidelity.ScreeningSteps, true, true) : options.Levers ?? None;
}
