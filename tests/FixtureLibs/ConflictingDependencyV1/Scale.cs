namespace ConflictingDependency;

/// <summary>Version 1: the factor is 2.</summary>
public static class Scale
{
    public static double Factor => 2.0;
}
