namespace ConflictingDependency;

/// <summary>Version 2: the factor is 3, and a member version 1 does not have.</summary>
public static class Scale
{
    public static double Factor => 3.0;

    public static string Describe() => "version 2";
}
