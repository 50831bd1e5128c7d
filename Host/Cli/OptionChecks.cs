using System.CommandLine;

namespace PeftHost.Cli;

/// <summary>Range checks on option values, made while parsing: a value out of range is a parse error (exit 2) naming the option.</summary>
internal static class OptionChecks
{
    /// <summary>Refuses values below <paramref name="min"/>.</summary>
    public static Option<int> AtLeast(this Option<int> option, int min)
    {
        option.Validators.Add(r =>
        {
            int value = r.GetValueOrDefault<int>();
            if (value < min) r.AddError($"{option.Name} must be at least {min} (got {value}).");
        });
        return option;
    }

    /// <summary>Refuses values below <paramref name="min"/> when the option is given.</summary>
    public static Option<int?> AtLeast(this Option<int?> option, int min)
    {
        option.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is int value && value < min) r.AddError($"{option.Name} must be at least {min} (got {value}).");
        });
        return option;
    }
}
