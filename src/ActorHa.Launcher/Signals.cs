using System.Runtime.InteropServices;

namespace ActorHa.Launcher;

/// <summary>Real POSIX signals to processes we started: the fault verbs of the launcher, the benchmarks and the specs.</summary>
public static partial class Signals
{
    public const int SigKill = 9;
    public const int SigTerm = 15;
    public const int SigCont = 18;
    public const int SigStop = 19;

    public static void Send(int pid, int signal)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            throw new PlatformNotSupportedException("Signals need Linux or macOS.");
        }

        var cont = OperatingSystem.IsMacOS() ? 19 : SigCont;
        var stop = OperatingSystem.IsMacOS() ? 17 : SigStop;
        var sig = signal switch
        {
            SigCont => cont,
            SigStop => stop,
            _ => signal,
        };
        if (Kill(pid, sig) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            // ESRCH (3): the process is already gone, which is what the caller wanted in every case we use.
            if (errno != 3)
            {
                throw new InvalidOperationException($"kill({pid}, {signal}) failed with errno {errno}.");
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int sig);
}
