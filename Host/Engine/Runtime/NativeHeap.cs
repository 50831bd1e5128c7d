using System.Runtime.InteropServices;

namespace PeftHost.Engine.Runtime;

/// <summary>
/// Bytes the C allocator has handed out and not taken back (glibc's <c>mallinfo2</c>: arena blocks in use plus
/// mmapped blocks). Unlike RSS it does not count free memory the allocator keeps, so it tells a native leak from
/// fragmentation. Null where the process does not run on glibc 2.33 or later.
/// </summary>
public static class NativeHeap
{
    /// <summary>Allocated native bytes now, or null where glibc's mallinfo2 is not there.</summary>
    public static long? InUseBytes()
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            MallInfo2 m = mallinfo2();
            return (long)(m.Uordblks + m.Hblkhd);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    // struct mallinfo2 (glibc 2.33): ten size_t fields.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct MallInfo2
    {
        public readonly nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost;
    }

    // DllImport, not LibraryImport: a blittable struct returned by value needs no marshalling, and LibraryImport would need unsafe code in this project.
    [DllImport("libc.so.6")]
    private static extern MallInfo2 mallinfo2();
}
