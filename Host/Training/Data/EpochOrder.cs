using static TorchSharp.torch;

namespace PeftHost.Training.Data;

/// <summary>
/// The order examples are visited in an epoch: a permutation from a generator seeded with
/// seed + epoch (as accelerate's SeedableRandomSampler does), or the file order without shuffling.
/// It depends on nothing else, so a resumed run visits the same examples in the same order.
/// </summary>
public static class EpochOrder
{
    /// <summary>The example indices of epoch <paramref name="epoch"/> (0-based).</summary>
    public static int[] For(int count, int epoch, int seed, bool shuffle)
    {
        if (!shuffle) return [.. Enumerable.Range(0, count)];
        using var generator = new Generator((ulong)(seed + (long)epoch));
        using Tensor perm = randperm(count, dtype: ScalarType.Int64, generator: generator);
        return [.. perm.data<long>().Select(i => (int)i)];
    }
}
