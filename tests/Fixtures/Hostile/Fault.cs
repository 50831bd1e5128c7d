namespace Hostile;

/// <summary>
/// Which member throws: the test sets AppContext data "Hostile.Fail" to a member name (AppContext is one per
/// process, so it crosses the plugin's load context without a shared type).
/// </summary>
internal static class Fault
{
    public const string Key = "Hostile.Fail";

    public static void At(string member)
    {
        if (AppContext.GetData(Key) is string chosen && chosen == member)
            throw new InvalidOperationException($"hostile fixture fails in {member}");
    }
}
