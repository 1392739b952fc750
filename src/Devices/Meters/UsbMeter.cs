using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ParetoPrune.Devices.Meters;

/// <summary>RDTech USB meters; the value is the model id that starts each of their frames.</summary>
public enum UsbMeterModel
{
    UM24C = 0x0963,
    UM25C = 0x09C9,
    UM34C = 0x0D4C,
}

public sealed record UsbMeterReading(double Volts, double Amps, double Watts);

/// <summary>
/// An RDTech UM24C/UM25C/UM34C USB meter over its serial link (Bluetooth rfcomm, e.g. /dev/rfcomm0): each poll
/// byte 0xF0 is answered with one 130-byte big-endian frame. About 2 Hz, so only good for averages over long runs.
/// </summary>
/// <remarks>
/// Frame layout (libsigrok rdtech-um driver, rd-usb): model id u16 at 0; volts u16 at 2 (UM25C /1000, others /100);
/// amps u16 at 4 (UM25C /10000, others /1000); watts u32 at 6 (/1000). UM24C and UM25C frames end with 0xFFF1;
/// the UM34C ends with an XOR checksum of fixed byte positions instead.
/// </remarks>
public sealed class UsbMeter : IPowerMeter, IDisposable
{
    public const int FrameLength = 130;
    public const byte PollCommand = 0xF0;

    /// <summary>Polls per reading before giving up; each malformed or missing frame costs one.</summary>
    public const int MaxPollsPerReading = 3;

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    // Byte positions XORed into the UM34C's last byte (libsigrok, hardware/rdtech-um/protocol.c).
    private static readonly int[] Um34cChecksumPositions =
        [1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127];

    private readonly Stream _stream;
    private readonly string _device;
    private readonly TimeSpan _timeout;
    private readonly bool _emptyReadIsIdle;
    private readonly object _lock = new(); // not Lock: Monitor.Wait/PulseAll signal new data
    private readonly Lock _pollLock = new(); // one poll at a time: each clears the buffer the other waits on
    private readonly List<byte> _received = [];
    private readonly Thread _reader;
    private Exception? _readError;
    private bool _endOfStream;
    private volatile bool _disposed;

    /// <summary>Opens a serial device (e.g. /dev/rfcomm0) read/write and puts it in raw mode.</summary>
    /// <param name="timeout">How long to wait for the reply to one poll.</param>
    public UsbMeter(UsbMeterModel model, string devicePath, TimeSpan? timeout = null)
        : this(Known(model), OpenRaw(devicePath, out var isTerminal), devicePath, timeout, isTerminal)
    {
    }

    /// <summary>Talks to a meter over an already open duplex stream, which it then owns.</summary>
    /// <param name="deviceName">Names the link in messages, e.g. the device path.</param>
    public UsbMeter(UsbMeterModel model, Stream stream, string deviceName, TimeSpan? timeout = null)
        : this(model, stream, deviceName, timeout, emptyReadIsIdle: false)
    {
    }

    private UsbMeter(UsbMeterModel model, Stream stream, string deviceName, TimeSpan? timeout, bool emptyReadIsIdle)
    {
        Model = Known(model);
        _stream = stream;
        _device = deviceName;
        _timeout = timeout ?? DefaultTimeout;
        _emptyReadIsIdle = emptyReadIsIdle;
        Name = $"{model} via {deviceName} (USB meter, ~2 Hz)";
        // A reader thread, so that a poll can time out without leaving a blocked read behind that would swallow
        // the next frame: late bytes land in the buffer and are discarded before the next poll.
        _reader = new Thread(ReadLoop) { IsBackground = true, Name = $"UsbMeter {deviceName}" };
        _reader.Start();
    }

    public UsbMeterModel Model { get; }
    public string Name { get; }

    /// <summary>The meters refresh about twice a second.</summary>
    public TimeSpan SampleInterval { get; } = TimeSpan.FromMilliseconds(500);

    public double ReadWatts() => Read().Watts;

    /// <summary>Polls until one valid frame arrives (at most <see cref="MaxPollsPerReading"/> polls).</summary>
    /// <exception cref="TimeoutException">The meter never answered.</exception>
    /// <exception cref="IOException">The link failed, or every answer was malformed.</exception>
    public UsbMeterReading Read()
    {
        lock (_pollLock)
            return Poll();
    }

    private UsbMeterReading Poll()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var problems = new List<string>();
        var silent = true;
        for (var poll = 1; poll <= MaxPollsPerReading; poll++)
        {
            lock (_lock)
            {
                ThrowIfLinkDown();
                // Resynchronise: whatever is buffered belongs to an earlier, failed poll.
                _received.Clear();
            }
            try
            {
                _stream.Write([PollCommand]);
                _stream.Flush();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or NotSupportedException)
            {
                throw new IOException($"{Name}: cannot send the poll byte: {e.Message}", e);
            }

            var deadline = Stopwatch.GetTimestamp() + (long)(_timeout.TotalSeconds * Stopwatch.Frequency);
            lock (_lock)
            {
                while (true)
                {
                    var (frame, problem, hopeless) = FindFrame();
                    if (frame is not null)
                        return Parse(Model, frame);
                    var left = deadline - Stopwatch.GetTimestamp();
                    if (hopeless || left <= 0 || _endOfStream || _readError is not null)
                    {
                        ThrowIfLinkDown();
                        silent &= _received.Count == 0;
                        problems.Add($"poll {poll}: {problem}");
                        break;
                    }
                    Monitor.Wait(_lock, TimeSpan.FromSeconds((double)left / Stopwatch.Frequency));
                }
            }
        }
        if (silent)
            throw new TimeoutException($"{Name}: no reply to {MaxPollsPerReading} polls within {_timeout.TotalSeconds:0.###} s each " +
                                       "(is the meter on, paired and connected?).");
        throw new IOException($"{Name}: no valid frame in {MaxPollsPerReading} polls ({string.Join("; ", problems)}).");
    }

    /// <summary>Decodes one frame, checking its model id and its end marker (or UM34C checksum).</summary>
    /// <exception cref="InvalidDataException">The frame is short, from another model, or corrupt.</exception>
    public static UsbMeterReading Parse(UsbMeterModel model, ReadOnlySpan<byte> frame)
    {
        if (frame.Length != FrameLength)
            throw new InvalidDataException($"{model} frame has {frame.Length} bytes, expected {FrameLength}.");
        var problem = HeaderProblem(model, frame) ?? EndProblem(model, frame);
        if (problem is not null)
            throw new InvalidDataException($"{model} frame: {problem}.");
        var (voltScale, ampScale) = model == UsbMeterModel.UM25C ? (1000.0, 10000.0) : (100.0, 1000.0);
        return new UsbMeterReading(
            BinaryPrimitives.ReadUInt16BigEndian(frame[2..]) / voltScale,
            BinaryPrimitives.ReadUInt16BigEndian(frame[4..]) / ampScale,
            BinaryPrimitives.ReadUInt32BigEndian(frame[6..]) / 1000.0);
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_emptyReadIsIdle)
            _reader.Join(TimeSpan.FromSeconds(1)); // a raw tty read returns within 0.1 s, then the loop sees _disposed
        _stream.Dispose();
    }

    private static UsbMeterModel Known(UsbMeterModel model) => Enum.IsDefined(model)
        ? model
        : throw new ArgumentOutOfRangeException(nameof(model), model, "Not a known RDTech meter model.");

    private static string? HeaderProblem(UsbMeterModel model, ReadOnlySpan<byte> frame)
    {
        var id = BinaryPrimitives.ReadUInt16BigEndian(frame);
        return id == (ushort)model ? null : $"starts with 0x{id:X4}, expected 0x{(ushort)model:X4} for a {model}";
    }

    private static string? EndProblem(UsbMeterModel model, ReadOnlySpan<byte> frame)
    {
        if (model == UsbMeterModel.UM34C)
        {
            byte sum = 0;
            foreach (var i in Um34cChecksumPositions)
                sum ^= frame[i];
            return frame[^1] == sum ? null : $"checksum byte is 0x{frame[^1]:X2}, computed 0x{sum:X2}";
        }
        var end = BinaryPrimitives.ReadUInt16BigEndian(frame[^2..]);
        return end == 0xFFF1 ? null : $"ends with 0x{end:X4}, expected 0xFFF1";
    }

    /// <summary>
    /// The first valid frame in the buffer (consumed with everything before it); otherwise what is wrong, and whether
    /// waiting longer cannot help (a whole frame's worth arrived and no frame start is still incomplete).
    /// </summary>
    private (byte[]? Frame, string Problem, bool Hopeless) FindFrame()
    {
        var bytes = CollectionsMarshal.AsSpan(_received);
        if (bytes.Length == 0)
            return (null, "no reply", false);
        string? firstProblem = null;
        var incomplete = false;
        for (var k = 0; k + 2 <= bytes.Length; k++)
        {
            if (BinaryPrimitives.ReadUInt16BigEndian(bytes[k..]) != (ushort)Model)
                continue;
            if (k + FrameLength > bytes.Length)
            {
                incomplete = true;
                firstProblem ??= $"short frame, {bytes.Length - k} of {FrameLength} bytes";
                break;
            }
            var candidate = bytes.Slice(k, FrameLength);
            var endProblem = EndProblem(Model, candidate);
            if (endProblem is null)
            {
                var frame = candidate.ToArray();
                _received.RemoveRange(0, k + FrameLength);
                return (frame, "", false);
            }
            firstProblem ??= endProblem;
        }
        if (firstProblem is null)
            firstProblem = bytes.Length < 2
                ? $"short frame, {bytes.Length} of {FrameLength} bytes"
                : HeaderProblem(Model, bytes)!;
        return (null, firstProblem, !incomplete && bytes.Length >= FrameLength);
    }

    private void ThrowIfLinkDown()
    {
        if (_readError is not null)
            throw new IOException($"{Name}: reading failed: {_readError.Message}", _readError);
        if (_endOfStream)
            throw new IOException($"{Name}: the connection was closed.");
    }

    private void ReadLoop()
    {
        var chunk = new byte[512];
        while (!_disposed)
        {
            int n;
            var started = Stopwatch.GetTimestamp();
            try
            {
                n = _stream.Read(chunk);
            }
            catch (Exception e)
            {
                lock (_lock)
                {
                    if (!_disposed)
                        _readError = e;
                    Monitor.PulseAll(_lock);
                }
                return;
            }
            // A raw tty returns nothing after 0.1 s without data; nothing at once means the line hung up (the
            // Bluetooth link dropped).
            if (n == 0 && _emptyReadIsIdle && Stopwatch.GetElapsedTime(started) >= TimeSpan.FromMilliseconds(50))
                continue;
            lock (_lock)
            {
                if (n == 0)
                    _endOfStream = true;
                else
                    _received.AddRange(chunk.AsSpan(0, n));
                Monitor.PulseAll(_lock);
            }
            if (n == 0)
                return;
        }
    }

    private static FileStream OpenRaw(string devicePath, out bool isTerminal)
    {
        FileStream stream;
        try
        {
            stream = new FileStream(devicePath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite, bufferSize: 0);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{devicePath}: cannot open the USB meter's serial device: {e.Message}", e);
        }
        try
        {
            isTerminal = Termios.MakeRaw(stream, devicePath);
            return stream;
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Raw mode for a tty (rfcomm is one): by default the line discipline waits for newlines, translates CR and echoes
    /// the poll byte back, all of which corrupt a binary protocol. VMIN=0, VTIME=1 make a read return after 0.1 s
    /// without data, so the reader thread can notice disposal.
    /// </summary>
    private static class Termios
    {
        // glibc's struct termios: four 32-bit flag words, c_line, then c_cc[32] (60 bytes in all; room to spare).
        private const int Size = 128;
        private const int CcOffset = 17;
        private const int VTime = 5;
        private const int VMin = 6;
        private const int TcsaNow = 0;
        private const int TciOFlush = 2;
        private const int ENotTy = 25;

        public static bool MakeRaw(FileStream stream, string devicePath)
        {
            if (!OperatingSystem.IsLinux())
                throw new PlatformNotSupportedException($"{devicePath}: serial USB meters are supported on Linux only.");
            var fd = (int)stream.SafeFileHandle.DangerousGetHandle();
            var termios = new byte[Size];
            if (tcgetattr(fd, termios) != 0)
            {
                if (Marshal.GetLastPInvokeError() == ENotTy)
                    return false; // a pipe or socket: nothing to configure
                throw new IOException($"{devicePath}: cannot read the terminal settings: {Marshal.GetLastPInvokeErrorMessage()}");
            }
            cfmakeraw(termios);
            termios[CcOffset + VMin] = 0;
            termios[CcOffset + VTime] = 1;
            if (tcsetattr(fd, TcsaNow, termios) != 0)
                throw new IOException($"{devicePath}: cannot set raw mode: {Marshal.GetLastPInvokeErrorMessage()}");
            _ = tcflush(fd, TciOFlush); // stale bytes from before are not an answer to our polls
            return true;
        }

        [DllImport("libc", SetLastError = true)]
        private static extern int tcgetattr(int fd, byte[] termios);

        [DllImport("libc", SetLastError = true)]
        private static extern int tcsetattr(int fd, int optionalActions, byte[] termios);

        [DllImport("libc")]
        private static extern void cfmakeraw(byte[] termios);

        [DllImport("libc", SetLastError = true)]
        private static extern int tcflush(int fd, int queueSelector);
    }
}
