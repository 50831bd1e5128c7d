namespace PeftHost.Llama;

/// <summary>
/// Picks the thread count of one-token decode calls by timing them: the candidates (all logical CPUs, then halved
/// down to 1) take turns over the first calls, a few each, and the one of the lowest median time wins. Decoding
/// reads every weight once per token, so where fewer threads already reach the memory bandwidth, more only add
/// synchronisation (one barrier per graph node); which count wins depends on the machine, so it is measured.
/// </summary>
internal sealed class DecodeThreadCalibration
{
    private const int SamplesPerCandidate = 4;
    private readonly int[] _candidates;
    private readonly List<double>[] _times;
    private int _calls;

    public DecodeThreadCalibration(int maxThreads)
    {
        var candidates = new List<int>();
        for (int t = maxThreads; t >= 1; t /= 2) candidates.Add(t);
        if (candidates[^1] != 1) candidates.Add(1);
        _candidates = [.. candidates];
        _times = [.. _candidates.Select(_ => new List<double>())];
    }

    /// <summary>Whether the choice is made.</summary>
    public bool Done { get; private set; }

    /// <summary>The thread count the next decode call runs with.</summary>
    public int Next() => _candidates[_calls % _candidates.Length];

    /// <summary>Records the time of the call <see cref="Next"/> chose for; returns the winner once every candidate has its samples, null before.</summary>
    public int? Record(double seconds)
    {
        _times[_calls % _candidates.Length].Add(seconds);
        _calls++;
        if (_calls < SamplesPerCandidate * _candidates.Length) return null;
        Done = true;
        int best = 0;
        for (int i = 1; i < _candidates.Length; i++)
            if (Median(_times[i]) < Median(_times[best])) best = i;
        return _candidates[best];
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}
