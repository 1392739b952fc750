namespace ParetoPrune.Objectives.Data;

/// <summary>Per-channel mean and standard deviation, for <see cref="Dataset.Normalized"/>.</summary>
public sealed record ChannelStatistics(float[] Mean, float[] Std)
{
    /// <summary>
    /// Population mean and standard deviation of each channel over every pixel of every image,
    /// accumulated in double. A constant channel gets std 1 (not 0) so normalising only centres it.
    /// Compute it on the training split only, so validation/test data do not leak into it.
    /// </summary>
    public static ChannelStatistics Compute(Dataset dataset)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        if (dataset.Count == 0)
            throw new ArgumentException("Cannot compute channel statistics of an empty dataset.", nameof(dataset));
        int channels = dataset.Channels;
        int plane = dataset.Height * dataset.Width;
        var sum = new double[channels];
        var sumSquares = new double[channels];
        float[] pixels = dataset.Pixels;
        for (int n = 0; n < dataset.Count; n++)
        {
            for (int c = 0; c < channels; c++)
            {
                int start = (n * channels + c) * plane;
                double s = 0, s2 = 0;
                for (int k = start; k < start + plane; k++)
                {
                    double v = pixels[k];
                    s += v;
                    s2 += v * v;
                }

                sum[c] += s;
                sumSquares[c] += s2;
            }
        }

        double total = (double)dataset.Count * plane;
        var mean = new float[channels];
        var std = new float[channels];
        for (int c = 0; c < channels; c++)
        {
            double m = sum[c] / total;
            double variance = Math.Max(0, sumSquares[c] / total - m * m);
            double s = Math.Sqrt(variance);
            mean[c] = (float)m;
            std[c] = s < 1e-6 ? 1f : (float)s;
        }

        return new ChannelStatistics(mean, std);
    }
}
