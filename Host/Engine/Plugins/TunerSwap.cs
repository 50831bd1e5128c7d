namespace PeftHost.Engine.Plugins;

/// <summary>
/// A plugin swap in progress on one <see cref="IPluginUser"/> (a model), holding its write lock: new
/// forward passes wait until <see cref="Commit"/> or <see cref="Rollback"/>.
/// </summary>
public sealed class TunerSwap
{
    private readonly Action _commit;
    private readonly Action _rollback;
    private bool _done;

    /// <summary>A swap whose end runs <paramref name="commit"/> or <paramref name="rollback"/> (once, whichever comes first).</summary>
    internal TunerSwap(Action commit, Action rollback)
    {
        _commit = commit;
        _rollback = rollback;
    }

    /// <summary>Keeps the new version; the snapshot is freed and forward passes resume.</summary>
    public void Commit()
    {
        if (_done) return;
        _done = true;
        _commit();
    }

    /// <summary>Goes back to the old version with the snapshot; forward passes resume.</summary>
    public void Rollback()
    {
        if (_done) return;
        _done = true;
        _rollback();
    }
}
