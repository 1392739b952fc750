using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// The optimiser step: PyTorch's SGD (momentum, Nesterov, L2 weight decay) and AdamW (decoupled weight decay), with every
/// number held for the length of the native call (<see cref="HeldScalars"/>). TorchSharp's own optimisers compute the
/// same updates but pass implicitly converted Scalars that another thread's collection can free mid-step.
/// </summary>
internal abstract class ParameterUpdate : IDisposable
{
    protected readonly IReadOnlyList<Parameter> Parameters;
    readonly List<Scalar> constants = [];

    protected ParameterUpdate(IReadOnlyList<Parameter> parameters) => Parameters = parameters;

    /// <summary>The rate of the next <see cref="Step"/> (a schedule sets it before each).</summary>
    public double LearningRate { get; set; }

    public static ParameterUpdate For(IReadOnlyList<Parameter> parameters, TrainingOptions options) => options.Optimizer switch
    {
        OptimizerKind.Sgd => new Sgd(parameters, options.LearningRate, options.Momentum, options.WeightDecay, options.Nesterov && options.Momentum > 0),
        OptimizerKind.AdamW => new AdamW(parameters, options.LearningRate, 0.9, 0.999, 1e-8, options.WeightDecay),
        _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "unknown optimiser"),
    };

    public void ZeroGrad()
    {
        foreach (var parameter in Parameters) parameter.grad?.zero_();
    }

    /// <summary>Updates every parameter that has a gradient.</summary>
    public void Step()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Update();
    }

    protected abstract void Update();

    /// <summary>A Scalar for the life of this optimiser.</summary>
    protected Scalar Constant(double value)
    {
        var scalar = value.ToScalar();
        constants.Add(scalar);
        return scalar;
    }

    /// <summary>Optimiser state that outlives the step's dispose scope.</summary>
    protected static Tensor State(Tensor value) => value.DetachFromDisposeScope();

    public virtual void Dispose()
    {
        foreach (var scalar in constants) scalar.Dispose();
        constants.Clear();
    }

    static void DisposeAll(Tensor?[] tensors)
    {
        foreach (var t in tensors) t?.Dispose();
    }

    sealed class Sgd : ParameterUpdate
    {
        readonly double momentum, weightDecay;
        readonly bool nesterov;
        readonly Scalar momentumScalar, weightDecayScalar;
        readonly Tensor?[] buffers;

        public Sgd(IReadOnlyList<Parameter> parameters, double learningRate, double momentum, double weightDecay, bool nesterov) : base(parameters)
        {
            if (!(learningRate >= 0) || !(momentum >= 0) || !(weightDecay >= 0))
                throw new ArgumentException($"SGD needs a learning rate, momentum and weight decay of at least 0 (got {learningRate}, {momentum}, {weightDecay})");
            LearningRate = learningRate;
            (this.momentum, this.weightDecay, this.nesterov) = (momentum, weightDecay, nesterov);
            (momentumScalar, weightDecayScalar) = (Constant(momentum), Constant(weightDecay));
            buffers = new Tensor?[parameters.Count];
        }

        protected override void Update()
        {
            using var step = (-LearningRate).ToScalar();
            for (int i = 0; i < Parameters.Count; i++)
            {
                var parameter = Parameters[i];
                if (parameter.grad is not { } gradient) continue;
                if (weightDecay != 0) gradient = gradient.add(parameter, weightDecayScalar);
                if (momentum != 0)
                {
                    if (buffers[i] is not { } buffer) buffers[i] = buffer = State(gradient.clone().detach());
                    else buffer.mul_(momentumScalar).add_(gradient, HeldScalars.One);
                    gradient = nesterov ? gradient.add(buffer, momentumScalar) : buffer;
                }
                parameter.add_(gradient, step);
            }
        }

        public override void Dispose()
        {
            DisposeAll(buffers);
            base.Dispose();
        }
    }

    sealed class AdamW : ParameterUpdate
    {
        readonly double beta1, beta2, weightDecay;
        readonly Scalar beta1Scalar, oneMinusBeta1, beta2Scalar, oneMinusBeta2, epsilon;
        readonly Tensor?[] averages, squares;
        readonly long[] steps;

        public AdamW(IReadOnlyList<Parameter> parameters, double learningRate, double beta1, double beta2, double epsilon, double weightDecay) : base(parameters)
        {
            if (!(learningRate >= 0) || !(weightDecay >= 0))
                throw new ArgumentException($"AdamW needs a learning rate and weight decay of at least 0 (got {learningRate}, {weightDecay})");
            LearningRate = learningRate;
            (this.beta1, this.beta2, this.weightDecay) = (beta1, beta2, weightDecay);
            (beta1Scalar, oneMinusBeta1, beta2Scalar, oneMinusBeta2) = (Constant(beta1), Constant(1 - beta1), Constant(beta2), Constant(1 - beta2));
            this.epsilon = Constant(epsilon);
            averages = new Tensor?[parameters.Count];
            squares = new Tensor?[parameters.Count];
            steps = new long[parameters.Count];
        }

        protected override void Update()
        {
            using var decay = (1 - LearningRate * weightDecay).ToScalar();
            for (int i = 0; i < Parameters.Count; i++)
            {
                var parameter = Parameters[i];
                if (parameter.grad is not { } gradient) continue;
                long step = ++steps[i];
                var average = averages[i] ??= State(zeros_like(parameter));
                var square = squares[i] ??= State(zeros_like(parameter));
                if (weightDecay != 0) parameter.mul_(decay);
                average.mul_(beta1Scalar).add_(gradient, oneMinusBeta1);
                square.mul_(beta2Scalar).addcmul_(gradient, gradient, oneMinusBeta2);
                double correction1 = 1 - Math.Pow(beta1, step), correction2 = 1 - Math.Pow(beta2, step);
                using var correction2Root = Math.Sqrt(correction2).ToScalar();
                using var stepSize = (-LearningRate / correction1).ToScalar();
                var denominator = square.sqrt().div_(correction2Root).add_(epsilon, HeldScalars.One);
                parameter.addcdiv_(average, denominator, stepSize);
            }
        }

        public override void Dispose()
        {
            DisposeAll(averages);
            DisposeAll(squares);
            base.Dispose();
        }
    }
}
