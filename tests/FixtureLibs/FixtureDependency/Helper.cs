namespace FixtureDependency;

/// <summary>Something the MissingDep fixture calls.</summary>
public static class Helper
{
    public static string PeftType => "MISSING_DEP";
}
