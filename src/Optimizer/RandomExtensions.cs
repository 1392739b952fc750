namespace ParetoPrune.Optimizer;

internal static class RandomExtensions
{
    /// <summary>A standard normal draw (Box–Muller): deterministic for a seed on every platform, which System.Random's
    /// own samplers do not promise.</summary>
    public static double NextGaussian(this Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
