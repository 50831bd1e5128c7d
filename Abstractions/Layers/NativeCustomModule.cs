using System.Runtime.InteropServices;
using TorchSharp;

namespace PeftHost.Abstractions.Layers;

/// <summary>
/// Makes the native half of a module written in C# without the leak of TorchSharp 0.107's <c>Module(string)</c>
/// constructor. That constructor asks libtorch's <c>THSNN_custom_module</c> for a boxed copy of the module too (for
/// native <c>Sequential</c>s, which TorchSharp no longer builds), and the native function keeps a heap
/// <c>shared_ptr</c> of it that nothing frees: 64 bytes for every module made, measured, unreachable by any caller.
/// Asked without the boxed copy, the same function makes the same module and keeps nothing. A module made here
/// passes the handle to TorchSharp's <c>Module(IntPtr handle, IntPtr boxedHandle)</c> constructor with no boxed
/// handle, and sets its name itself.
/// </summary>
internal static class NativeCustomModule
{
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr Forward(IntPtr input);

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate IntPtr Constructor([MarshalAs(UnmanagedType.LPStr)] string name, IntPtr forward, IntPtr outAsAnyModule);

    // libtorch calls a custom module's forward only through its boxed copy, which these modules do not have.
    private static readonly Forward Unreachable = _ =>
    {
        Environment.FailFast("libtorch called the native forward of a PeftHost module, which has no boxed copy to be called through.");
        return IntPtr.Zero;
    };

    private static readonly IntPtr UnreachablePointer = Marshal.GetFunctionPointerForDelegate(Unreachable);

    private static readonly Lazy<Constructor> Ctor = new(() =>
    {
        // TorchSharp loads libtorch and its own LibTorchSharp on first use; resolve through its assembly so that the
        // same library (the CPU or CUDA package's) is found.
        torch.InitializeDeviceType(DeviceType.CPU);
        IntPtr library = NativeLibrary.Load("LibTorchSharp", typeof(torch).Assembly, null);
        return Marshal.GetDelegateForFunctionPointer<Constructor>(NativeLibrary.GetExport(library, "THSNN_custom_module"));
    });

    /// <summary>A native module named <paramref name="name"/>, owned by the caller's TorchSharp module from then on.</summary>
    /// <exception cref="InvalidOperationException">libtorch could not make it.</exception>
    public static IntPtr Create(string name)
    {
        IntPtr handle = Ctor.Value(name, UnreachablePointer, IntPtr.Zero);
        if (handle == IntPtr.Zero) throw new InvalidOperationException($"libtorch could not create the native module for '{name}'.");
        return handle;
    }
}
