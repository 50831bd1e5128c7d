using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Silk.NET.Core;
using Silk.NET.Core.Native;
using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>
/// Collects the validation layer's warnings and errors through VK_EXT_debug_utils. The callback
/// cannot throw across native frames, so it records and the runtime throws at the next check.
/// </summary>
internal sealed unsafe class VulkanValidationMessenger : IDisposable
{
    private readonly Vk _vk;
    private readonly Instance _instance;
    private readonly List<string> _errors = [];
    private readonly Lock _lock = new();
    private GCHandle _self;
    private DebugUtilsMessengerEXT _messenger;

    public VulkanValidationMessenger(Vk vk, Instance instance)
    {
        _vk = vk;
        _instance = instance;
        _self = GCHandle.Alloc(this);
        var create = (delegate* unmanaged[Cdecl]<Instance, DebugUtilsMessengerCreateInfoEXT*, AllocationCallbacks*, DebugUtilsMessengerEXT*, Result>)
            vk.GetInstanceProcAddr(instance, "vkCreateDebugUtilsMessengerEXT").Handle;
        if (create == null)
        {
            _self.Free();
            throw new VulkanException("Vulkan: the validation layer is on but vkCreateDebugUtilsMessengerEXT is missing.");
        }
        DebugUtilsMessengerCreateInfoEXT info = CreateInfo((void*)GCHandle.ToIntPtr(_self));
        DebugUtilsMessengerEXT messenger;
        Result r = create(instance, &info, null, &messenger);
        if (r != Result.Success)
        {
            _self.Free();
            VulkanException.Check(r, "vkCreateDebugUtilsMessengerEXT");
        }
        _messenger = messenger;
    }

    /// <summary>The create info, also chained into vkCreateInstance to catch instance creation errors.</summary>
    public static DebugUtilsMessengerCreateInfoEXT CreateInfo(void* userData) => new()
    {
        SType = StructureType.DebugUtilsMessengerCreateInfoExt,
        MessageSeverity = DebugUtilsMessageSeverityFlagsEXT.ErrorBitExt | DebugUtilsMessageSeverityFlagsEXT.WarningBitExt,
        MessageType = DebugUtilsMessageTypeFlagsEXT.GeneralBitExt | DebugUtilsMessageTypeFlagsEXT.ValidationBitExt | DebugUtilsMessageTypeFlagsEXT.PerformanceBitExt,
        PfnUserCallback = new PfnDebugUtilsMessengerCallbackEXT(&Callback),
        PUserData = userData,
    };

    /// <summary>Throws a <see cref="VulkanValidationException"/> when errors were recorded, and clears them.</summary>
    public void ThrowIfErrors()
    {
        string[] errors;
        lock (_lock)
        {
            if (_errors.Count == 0)
            {
                return;
            }
            errors = [.. _errors];
            _errors.Clear();
        }
        throw new VulkanValidationException(errors);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static Bool32 Callback(DebugUtilsMessageSeverityFlagsEXT severity, DebugUtilsMessageTypeFlagsEXT types,
        DebugUtilsMessengerCallbackDataEXT* data, void* userData)
    {
        string message = SilkMarshal.PtrToString((nint)data->PMessage) ?? "(no message)";
        if (severity.HasFlag(DebugUtilsMessageSeverityFlagsEXT.ErrorBitExt))
        {
            if (userData != null && GCHandle.FromIntPtr((nint)userData).Target is VulkanValidationMessenger self)
            {
                lock (self._lock)
                {
                    self._errors.Add(message);
                }
            }
        }
        else
        {
            // Warnings do not fail the run; they go to stderr where a developer will see them.
            Console.Error.WriteLine($"[vulkan validation] {message}");
        }
        return false;
    }

    public void Dispose()
    {
        if (_messenger.Handle != 0)
        {
            var destroy = (delegate* unmanaged[Cdecl]<Instance, DebugUtilsMessengerEXT, AllocationCallbacks*, void>)
                _vk.GetInstanceProcAddr(_instance, "vkDestroyDebugUtilsMessengerEXT").Handle;
            if (destroy != null)
            {
                destroy(_instance, _messenger, null);
            }
            _messenger = default;
        }
        if (_self.IsAllocated)
        {
            _self.Free();
        }
    }
}
