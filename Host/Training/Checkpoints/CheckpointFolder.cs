using System.Globalization;
using System.Text.RegularExpressions;
using PeftHost.Formats;

namespace PeftHost.Training.Checkpoints;

/// <summary>
/// The <c>checkpoint-&lt;step&gt;</c> folders of an output folder, each complete or absent: a checkpoint is
/// written into a hidden temporary folder, flushed, and renamed into place (a rename is atomic), and is
/// removed by renaming it away first; leftovers of a killed process are hidden and cleared at the next start.
/// </summary>
public static partial class CheckpointFolder
{
    /// <summary>The prefix of checkpoint folder names (transformers' PREFIX_CHECKPOINT_DIR).</summary>
    public const string Prefix = "checkpoint-";

    private const string TempPrefix = ".tmp-";

    [GeneratedRegex(@"^checkpoint-(\d+)$")]
    private static partial Regex Name();

    /// <summary>The folder of the checkpoint at <paramref name="step"/>.</summary>
    public static string PathOf(string outputDir, int step) => System.IO.Path.Combine(outputDir, Prefix + step.ToString(CultureInfo.InvariantCulture));

    /// <summary>The step of a checkpoint folder, or null when the name is not checkpoint-&lt;step&gt;.</summary>
    public static int? StepOf(string folder)
    {
        Match m = Name().Match(System.IO.Path.GetFileName(System.IO.Path.TrimEndingDirectorySeparator(folder)));
        return m.Success && int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out int step) ? step : null;
    }

    /// <summary>The complete checkpoints of an output folder, by step.</summary>
    public static IReadOnlyList<string> List(string outputDir) =>
        !Directory.Exists(outputDir) ? []
            : [.. Directory.GetDirectories(outputDir).Where(d => StepOf(d) is not null).OrderBy(d => StepOf(d)!.Value)];

    /// <summary>The latest checkpoint of an output folder.</summary>
    /// <exception cref="DirectoryNotFoundException">It holds none.</exception>
    public static string Latest(string outputDir)
    {
        IReadOnlyList<string> all = List(outputDir);
        return all.Count > 0 ? all[^1] : throw new DirectoryNotFoundException($"--resume: {outputDir} holds no checkpoint-<step> folder to resume from.");
    }

    /// <summary>Removes temporary folders a killed process left behind.</summary>
    public static void ClearLeftovers(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return;
        foreach (string d in Directory.GetDirectories(outputDir, TempPrefix + "*")) Directory.Delete(d, recursive: true);
    }

    /// <summary>
    /// Writes the checkpoint of <paramref name="step"/>: <paramref name="fill"/> writes every file into a
    /// temporary folder, which is flushed and renamed to <c>checkpoint-&lt;step&gt;</c>. Returns its path.
    /// </summary>
    public static string Write(string outputDir, int step, Action<string> fill)
    {
        Directory.CreateDirectory(outputDir);
        string final = PathOf(outputDir, step);
        string temp = System.IO.Path.Combine(outputDir, TempPrefix + Prefix + step.ToString(CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(temp);
        try
        {
            fill(temp);
            foreach (string file in Directory.GetFiles(temp, "*", SearchOption.AllDirectories)) Flush(file);
            foreach (string dir in Directory.GetDirectories(temp, "*", SearchOption.AllDirectories)) AtomicFile.SyncDirectory(dir);
            AtomicFile.SyncDirectory(temp);
            if (Directory.Exists(final)) Remove(final);
            Directory.Move(temp, final);
            AtomicFile.SyncDirectory(outputDir);
            return final;
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
    }

    /// <summary>Removes a checkpoint: renamed away first, so it is never seen half deleted.</summary>
    public static void Remove(string checkpoint)
    {
        string parent = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(checkpoint))!;
        string doomed = System.IO.Path.Combine(parent, TempPrefix + "removed-" + System.IO.Path.GetFileName(checkpoint) + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.Move(checkpoint, doomed);
        AtomicFile.SyncDirectory(parent);
        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>
    /// transformers' <c>_rotate_checkpoints</c>: keeps the newest <paramref name="limit"/> checkpoints,
    /// and always the best one (moved to second newest in the order, so a limit of 1 keeps 2 when the
    /// best is not the newest). Returns the ones removed.
    /// </summary>
    public static IReadOnlyList<string> Rotate(string outputDir, int limit, string? best)
    {
        var sorted = List(outputDir).Select(System.IO.Path.GetFullPath).ToList();
        if (sorted.Count <= limit) return [];
        string? bestFull = best is null ? null : System.IO.Path.GetFullPath(best);
        int bestIndex = bestFull is null ? -1 : sorted.IndexOf(bestFull);
        if (bestIndex >= 0)
            for (int i = bestIndex; i < sorted.Count - 2; i++) (sorted[i], sorted[i + 1]) = (sorted[i + 1], sorted[i]);
        int keep = limit == 1 && bestFull is not null && sorted[^1] != bestFull ? 2 : limit;
        var removed = sorted.Take(Math.Max(0, sorted.Count - keep)).ToList();
        foreach (string d in removed) Remove(d);
        return removed;
    }

    private static void Flush(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        stream.Flush(flushToDisk: true);
    }
}
