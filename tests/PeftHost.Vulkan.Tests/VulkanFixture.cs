using PeftHost.Vulkan.Runtime;
using Xunit;

[assembly: AssemblyFixture(typeof(PeftHost.Vulkan.Tests.VulkanFixture))]
// One device queue and command pool per context, and two shared cores: run tests one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace PeftHost.Vulkan.Tests;

/// <summary>
/// The Vulkan contexts the tests share: one with every optional feature the device has, one with
/// all of them disabled (the fallback shaders). A missing device fails the tests, never skips them.
/// </summary>
public sealed class VulkanFixture : IDisposable
{
    private readonly Lazy<VulkanContext> _full = new(() => Create(VulkanFeatures.None));
    private readonly Lazy<VulkanContext> _fallback = new(() =>
        Create(VulkanFeatures.Storage16Bit | VulkanFeatures.Storage8Bit | VulkanFeatures.SubgroupArithmetic));

    /// <summary>The context with optional features enabled.</summary>
    public VulkanContext Full => _full.Value;

    /// <summary>The context with optional features disabled.</summary>
    public VulkanContext Fallback => _fallback.Value;

    /// <summary>The context for a test's "features" argument.</summary>
    public VulkanContext Get(bool optionalFeatures) => optionalFeatures ? Full : Fallback;

    private static VulkanContext Create(VulkanFeatures disabled)
    {
        try
        {
            return VulkanContext.Create(new VulkanContextOptions
            {
                Validation = VulkanValidation.WhenInstalled,
                DisabledFeatures = disabled,
            });
        }
        catch (VulkanException e)
        {
            string why = Environment.GetEnvironmentVariable("CI") == "true"
                ? "CI=true: the Vulkan tests require a Vulkan device (CI installs mesa-vulkan-drivers, libvulkan1, glslc and vulkan-validationlayers)."
                : "The Vulkan tests need a Vulkan device. On Debian/Ubuntu: apt-get install -y mesa-vulkan-drivers libvulkan1 vulkan-validationlayers glslc (lavapipe, the CPU device, is enough).";
            throw new InvalidOperationException($"{why}\n{e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_full.IsValueCreated)
        {
            _full.Value.Dispose();
        }
        if (_fallback.IsValueCreated)
        {
            _fallback.Value.Dispose();
        }
    }
}
