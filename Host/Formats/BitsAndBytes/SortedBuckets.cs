namespace PeftHost.Formats.BitsAndBytes;

/// <summary>torch.bucketize with <c>right=False</c> on increasing bounds: the count of bounds strictly below a value.</summary>
internal static class SortedBuckets
{
    public static int Below(ReadOnlySpan<float> bounds, float x)
    {
        int lo = 0, hi = bounds.Length;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (bounds[mid] < x) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
