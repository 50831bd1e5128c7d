using System.Runtime.InteropServices;
using Silk.NET.Core;
using Silk.NET.Core.Native;
using Silk.NET.Vulkan;

namespace PeftHost.Vulkan.Runtime;

/// <summary>The Vulkan instance (with the validation layer when requested) and its physical devices.</summary>
public sealed unsafe class VulkanInstance : IDisposable
{
    private const string ValidationLayer = "VK_LAYER_KHRONOS_validation";
    private const string DebugUtilsExtension = "VK_EXT_debug_utils";
    private readonly PhysicalDevice[] _physicalDevices;
    private bool _disposed;

    private VulkanInstance(Vk vk, Instance instance, VulkanValidationMessenger? messenger, PhysicalDevice[] physicalDevices, IReadOnlyList<VulkanDeviceInfo> devices)
    {
        Vk = vk;
        Handle = instance;
        Messenger = messenger;
        _physicalDevices = physicalDevices;
        Devices = devices;
    }

    /// <summary>The devices, in enumeration order.</summary>
    public IReadOnlyList<VulkanDeviceInfo> Devices { get; }

    /// <summary>Whether the validation layer is on.</summary>
    public bool ValidationEnabled => Messenger is not null;

    internal Vk Vk { get; }
    internal Instance Handle { get; }
    internal VulkanValidationMessenger? Messenger { get; }
    internal PhysicalDevice PhysicalDevice(int index) => _physicalDevices[index];

    /// <summary>Whether the Khronos validation layer is installed.</summary>
    public static bool IsValidationLayerInstalled()
    {
        using Vk vk = Vk.GetApi();
        return LayerPresent(vk, ValidationLayer);
    }

    /// <summary>Creates the instance and enumerates devices; throws with install instructions when Vulkan is absent.</summary>
    public static VulkanInstance Create(VulkanValidation validation = VulkanValidation.Auto)
    {
        Vk vk;
        try
        {
            vk = Vk.GetApi();
        }
        catch (Exception e) when (e is DllNotFoundException or FileNotFoundException or EntryPointNotFoundException)
        {
            throw new VulkanException($"The Vulkan loader (libvulkan) is not installed ({e.Message}). {VulkanDeviceSelector.NoDeviceMessage}");
        }
        try
        {
            return CreateWith(vk, validation);
        }
        catch
        {
            vk.Dispose();
            throw;
        }
    }

    private static VulkanInstance CreateWith(Vk vk, VulkanValidation validation)
    {
        bool wantValidation = validation switch
        {
            VulkanValidation.Off => false,
            VulkanValidation.WhenInstalled or VulkanValidation.Required => true,
#if DEBUG
            _ => true,
#else
            _ => Environment.GetEnvironmentVariable("PEFTHOST_VULKAN_VALIDATION") == "1",
#endif
        };
        bool layerPresent = wantValidation && LayerPresent(vk, ValidationLayer);
        if (validation == VulkanValidation.Required && !layerPresent)
        {
            throw new VulkanException($"Vulkan validation was required but {ValidationLayer} is not installed (Debian/Ubuntu: apt-get install -y vulkan-validationlayers).");
        }
        bool useValidation = layerPresent && vk.IsInstanceExtensionPresent(DebugUtilsExtension);

        var appName = (byte*)SilkMarshal.StringToPtr("PeftHost");
        var layers = new[] { ValidationLayer };
        var extensions = new[] { DebugUtilsExtension };
        var layerPtrs = (byte**)SilkMarshal.StringArrayToPtr(layers);
        var extPtrs = (byte**)SilkMarshal.StringArrayToPtr(extensions);
        try
        {
            var app = new ApplicationInfo
            {
                SType = StructureType.ApplicationInfo,
                PApplicationName = appName,
                ApplicationVersion = new Version32(0, 1, 0),
                PEngineName = appName,
                EngineVersion = new Version32(0, 1, 0),
                ApiVersion = Vk.Version12,
            };
            DebugUtilsMessengerCreateInfoEXT debugInfo = VulkanValidationMessenger.CreateInfo(null);
            var info = new InstanceCreateInfo
            {
                SType = StructureType.InstanceCreateInfo,
                PApplicationInfo = &app,
                EnabledLayerCount = useValidation ? 1u : 0u,
                PpEnabledLayerNames = useValidation ? layerPtrs : null,
                EnabledExtensionCount = useValidation ? 1u : 0u,
                PpEnabledExtensionNames = useValidation ? extPtrs : null,
                PNext = useValidation ? &debugInfo : null,
            };
            Instance instance;
            Result r = vk.CreateInstance(&info, null, &instance);
            if (r == Result.ErrorIncompatibleDriver)
            {
                throw new VulkanException(VulkanDeviceSelector.NoDeviceMessage, r);
            }
            VulkanException.Check(r, "vkCreateInstance");
            VulkanValidationMessenger? messenger = null;
            try
            {
                messenger = useValidation ? new VulkanValidationMessenger(vk, instance) : null;
                uint count = 0;
                VulkanException.Check(vk.EnumeratePhysicalDevices(instance, &count, null), "vkEnumeratePhysicalDevices");
                var physical = new PhysicalDevice[count];
                fixed (PhysicalDevice* p = physical)
                {
                    VulkanException.Check(vk.EnumeratePhysicalDevices(instance, &count, p), "vkEnumeratePhysicalDevices");
                }
                var infos = physical.Select((pd, i) => VulkanDeviceQuery.Describe(vk, pd, i)).ToArray();
                return new VulkanInstance(vk, instance, messenger, physical, infos);
            }
            catch
            {
                messenger?.Dispose();
                vk.DestroyInstance(instance, null);
                throw;
            }
        }
        finally
        {
            SilkMarshal.Free((nint)appName);
            SilkMarshal.Free((nint)layerPtrs);
            SilkMarshal.Free((nint)extPtrs);
        }
    }

    private static bool LayerPresent(Vk vk, string name)
    {
        uint count = 0;
        if (vk.EnumerateInstanceLayerProperties(&count, null) != Result.Success || count == 0)
        {
            return false;
        }
        var props = new LayerProperties[count];
        fixed (LayerProperties* p = props)
        {
            vk.EnumerateInstanceLayerProperties(&count, p);
        }
        foreach (LayerProperties lp in props)
        {
            if (SilkMarshal.PtrToString((nint)lp.LayerName) == name)
            {
                return true;
            }
        }
        return false;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        Messenger?.Dispose();
        Vk.DestroyInstance(Handle, null);
        Vk.Dispose();
    }
}
