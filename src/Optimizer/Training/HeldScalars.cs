using TorchSharp;
using static TorchSharp.torch;

namespace ParetoPrune.Optimizer.Training;

/// <summary>
/// Tensor arithmetic whose numbers stay referenced until libtorch has read them.
/// </summary>
/// <remarks>
/// TorchSharp turns a number into a native <see cref="Scalar"/> implicitly (<c>x * 0.5</c>, <c>x &gt;= 0</c>, and
/// <c>a + b</c>, whose alpha is 1; its own optimisers' <c>add_(grad, alpha: -lr)</c>) and leaves the Scalar to its
/// finalizer. Once the handle has been read the managed Scalar is unreachable, so a collection started by another thread
/// during the native call frees it while libtorch still reads it: <c>Scalar::toFloat</c> fails with "Expected false to be
/// true", or reads a wrong number. Measured: TorchSharp's SGD failed 460 of 33 025 steps with three threads stepping and
/// one collecting. Parallel trials, progress rendering and test runners all collect on other threads, so the training
/// path (forward ops, loss, optimiser) uses these instead, and a node's constants are Scalars its closure holds.
/// </remarks>
internal static class HeldScalars
{
    /// <summary>1, for the life of the process: the alpha of every addition (and the optimiser's).</summary>
    internal static readonly Scalar One = 1.ToScalar();

    static readonly Scalar zero = 0f.ToScalar();

    /// <summary>A Scalar for a number known when the module is built, held by whatever holds the returned object.</summary>
    public static Scalar Hold(double value) => value.ToScalar();

    /// <summary>Runs <paramref name="op"/> with <paramref name="scalar"/>, which it disposes after: held until the call returns.</summary>
    static Tensor With(Scalar scalar, Func<Scalar, Tensor> op)
    {
        using (scalar) return op(scalar);
    }

    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);

    public static Tensor Plus(this Tensor a, Scalar b) => a.add(b, One);

    /// <summary>Adds an integer; the result keeps an integer tensor's type.</summary>
    public static Tensor Plus(this Tensor a, long b) => With(b.ToScalar(), s => a.add(s, One));

    public static Tensor Plus(this Tensor a, double b) => With(b.ToScalar(), s => a.add(s, One));

    public static Tensor Times(this Tensor a, double factor) => With(factor.ToScalar(), s => a.mul(s));

    public static Tensor DividedBy(this Tensor a, double divisor) => With(divisor.ToScalar(), s => a.div(s));

    /// <summary><paramref name="a"/> &gt;= <paramref name="value"/>, element-wise.</summary>
    public static Tensor AtLeast(this Tensor a, double value) => With(value.ToScalar(), s => a.ge(s));

    /// <summary><paramref name="a"/> &gt; <paramref name="value"/>, element-wise.</summary>
    public static Tensor Above(this Tensor a, double value) => With(value.ToScalar(), s => a.gt(s));

    public static Tensor EqualTo(this Tensor a, double value) => With(value.ToScalar(), s => a.eq(s));

    public static Tensor Clamp(this Tensor a, double? min, double? max)
    {
        using var low = min?.ToScalar();
        using var high = max?.ToScalar();
        return a.clamp(low, high);
    }

    /// <summary>Sets the entries of <paramref name="a"/> where <paramref name="mask"/> is true to +0.</summary>
    public static void ZeroWhere(this Tensor a, Tensor mask) => a.masked_fill_(mask, zero);
}
