using System.Diagnostics;
using ParetoPrune.Devices.Meters;

namespace ParetoPrune.Devices.Tests.Meters;

public class PowerTraceTests
{
    private static long T(double seconds) => (long)Math.Round(seconds * Stopwatch.Frequency);

    // Samples at 0, 1, 2, 3 s: 2 W, 4 W, 4 W, 0 W.
    private static PowerTrace Trace() => new([T(0), T(1), T(2), T(3)], [2.0, 4.0, 4.0, 0.0]);

    [Fact]
    public void Whole_trace_is_the_sum_of_trapezoids()
    {
        // (2+4)/2·1 + 4·1 + (4+0)/2·1 = 3 + 4 + 2
        Assert.Equal(9.0, Trace().Energy(T(0), T(3)), 9);
    }

    [Fact]
    public void Window_between_two_samples_is_interpolated_at_both_edges()
    {
        // p(0.25) = 2.5 W, p(0.75) = 3.5 W: mean 3 W over 0.5 s.
        var trace = Trace();
        Assert.Equal(1.5, trace.Energy(T(0.25), T(0.75)), 9);
        Assert.Equal(3.0, trace.AveragePower(T(0.25), T(0.75)), 9);
        Assert.Equal(0, trace.SamplesIn(T(0.25), T(0.75)));
    }

    [Fact]
    public void Window_edges_between_samples_cut_the_outer_trapezoids()
    {
        // 0.5→1: p(0.5) = 3, (3+4)/2·0.5 = 1.75; 1→2: 4; 2→2.5: p(2.5) = 2, (4+2)/2·0.5 = 1.5. Total 7.25 J over 2 s.
        var trace = Trace();
        Assert.Equal(7.25, trace.Energy(T(0.5), T(2.5)), 9);
        Assert.Equal(3.625, trace.AveragePower(T(0.5), T(2.5)), 9);
        Assert.Equal(2, trace.SamplesIn(T(0.5), T(2.5)));
    }

    [Fact]
    public void Window_on_samples_counts_both_edge_samples()
    {
        var trace = Trace();
        Assert.Equal(4.0, trace.Energy(T(1), T(2)), 9);
        Assert.Equal(2, trace.SamplesIn(T(1), T(2)));
        Assert.Equal(4, trace.SamplesIn(T(0), T(3)));
    }

    [Fact]
    public void Energy_is_additive_over_adjacent_windows()
    {
        var trace = Trace();
        Assert.Equal(trace.Energy(T(0), T(3)), trace.Energy(T(0), T(1.3)) + trace.Energy(T(1.3), T(3)), 9);
    }

    [Fact]
    public void Empty_window_has_no_energy_and_the_interpolated_power()
    {
        var trace = Trace();
        Assert.Equal(0.0, trace.Energy(T(0.5), T(0.5)));
        Assert.Equal(3.0, trace.AveragePower(T(0.5), T(0.5)), 9);
    }

    [Fact]
    public void Window_outside_the_trace_is_refused()
    {
        var trace = Trace();
        var early = Assert.Throws<InvalidOperationException>(() => trace.Energy(T(-0.5), T(1)));
        Assert.Contains("does not cover", early.Message);
        Assert.Contains("starts 0.5 s after the window starts", early.Message);
        var late = Assert.Throws<InvalidOperationException>(() => trace.Energy(T(1), T(3.25)));
        Assert.Contains("ends 0.25 s before the window ends", late.Message);
        Assert.Throws<InvalidOperationException>(() => new PowerTrace([], []).Energy(0, 1));
    }

    [Fact]
    public void Reversed_window_is_refused()
    {
        Assert.Throws<ArgumentException>(() => Trace().Energy(T(2), T(1)));
    }

    [Fact]
    public void Samples_must_be_in_time_order_and_paired()
    {
        Assert.Throws<ArgumentException>(() => new PowerTrace([T(0), T(1), T(1)], [1.0, 1.0, 1.0]));
        Assert.Throws<ArgumentException>(() => new PowerTrace([T(0), T(1)], [1.0]));
        Assert.Throws<ArgumentException>(() => new PowerTrace([T(0), T(1)], [1.0, double.NaN]));
    }
}
