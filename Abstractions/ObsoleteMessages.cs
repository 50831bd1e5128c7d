namespace PeftHost.Abstractions;

// The reasons given by [Obsolete] members of the contract, kept in one place.
internal static class ObsoleteMessages
{
    public const string PluginState =
        "Opaque plugin state is not saved or handed across a reload by the host (contract 1.1). Keep settings that are not tensors in the adapter's config (TunerConfig), which is. Kept for binary compatibility with contract 1.0.";
}
