namespace PeftHost.Vulkan.Kernels;

/// <summary>Splits a workgroup count over X and Y, since one dimension is limited (often 65535).</summary>
internal static class VulkanGrid
{
    /// <summary>(x, y) with x * y &gt;= <paramref name="groups"/>; shaders compute id = x + y * numGroups.x and skip the excess.</summary>
    public static (uint X, uint Y) Split(ulong groups, uint maxPerDimension)
    {
        if (groups <= maxPerDimension)
        {
            return ((uint)groups, 1);
        }
        ulong y = (groups + maxPerDimension - 1) / maxPerDimension;
        ulong x = (groups + y - 1) / y;
        return ((uint)x, (uint)y);
    }

    /// <summary>Throws unless <paramref name="buffer"/> holds at least <paramref name="bytes"/> bytes.</summary>
    public static void Require(Runtime.VulkanBuffer buffer, ulong bytes, string role, string kernel)
    {
        if (buffer.Size < bytes)
        {
            throw new ArgumentException($"{kernel}: {role} buffer '{buffer.Name}' has {buffer.Size} bytes, {bytes} are needed.");
        }
    }
}
