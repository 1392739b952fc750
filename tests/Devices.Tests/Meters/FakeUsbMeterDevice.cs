using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace ParetoPrune.Devices.Tests.Meters;

/// <summary>
/// A USB meter at the far end of a real pseudo-terminal: the code under test opens <see cref="SlavePath"/> as it
/// would /dev/rfcomm0 (and sets raw mode on it), while a thread here reads the master side and answers each poll
/// byte 0xF0 with whatever <c>reply</c> says for that poll: bytes to send, nothing (silence), or null to hang up.
/// </summary>
internal sealed class FakeUsbMeterDevice : IDisposable
{
    private const int ORdWr = 2;
    private const int ONoCtty = 0x100;

    private readonly FileStream _master;
    private readonly int _slaveFd;
    private readonly Func<int, byte[]?> _reply;
    private readonly Thread _thread;
    private int _polls;
    private int _otherBytes;

    public FakeUsbMeterDevice(Func<int, byte[]?> reply)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("The fake USB meter needs Linux pseudo-terminals.");
        _reply = reply;
        var fd = posix_openpt(ORdWr | ONoCtty);
        if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0)
            throw new IOException($"Cannot create a pseudo-terminal: {Marshal.GetLastPInvokeErrorMessage()}");
        var name = new byte[256];
        if (ptsname_r(fd, name, (nuint)name.Length) != 0)
            throw new IOException($"ptsname_r failed: {Marshal.GetLastPInvokeErrorMessage()}");
        SlavePath = Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0));
        _master = new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.ReadWrite, bufferSize: 0);
        // Hold a slave descriptor until disposal: with none open, reads on the master fail (EIO) before the code
        // under test has opened the slave.
        _slaveFd = open(SlavePath, ORdWr | ONoCtty);
        if (_slaveFd < 0)
            throw new IOException($"{SlavePath}: {Marshal.GetLastPInvokeErrorMessage()}");
        _thread = new Thread(Serve) { IsBackground = true, Name = "FakeUsbMeterDevice" };
        _thread.Start();
    }

    /// <summary>The serial device the meter code opens, e.g. /dev/pts/3.</summary>
    public string SlavePath { get; }

    public int Polls => Volatile.Read(ref _polls);

    /// <summary>Bytes received that were not the poll command.</summary>
    public int OtherBytes => Volatile.Read(ref _otherBytes);

    public void Dispose()
    {
        _ = close(_slaveFd);
        // With every slave descriptor closed the master read fails with EIO and the thread ends.
        _thread.Join(TimeSpan.FromSeconds(2));
        _master.Dispose();
    }

    private void Serve()
    {
        var buffer = new byte[64];
        try
        {
            while (true)
            {
                var n = _master.Read(buffer);
                if (n == 0)
                    return;
                for (var i = 0; i < n; i++)
                {
                    if (buffer[i] != 0xF0)
                    {
                        Interlocked.Increment(ref _otherBytes);
                        continue;
                    }
                    var reply = _reply(Interlocked.Increment(ref _polls));
                    if (reply is null)
                    {
                        _master.Dispose(); // hang up
                        return;
                    }
                    if (reply.Length > 0)
                    {
                        _master.Write(reply);
                        _master.Flush();
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            // The other end closed.
        }
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int posix_openpt(int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int grantpt(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int unlockpt(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int ptsname_r(int fd, byte[] buf, nuint buflen);

    [DllImport("libc", SetLastError = true, CharSet = CharSet.Ansi)]
    private static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
