namespace PeftHost.Formats.Tests.Support;

/// <summary>A clock stopped at one local time (in UTC as the local zone), for strftime_now.</summary>
internal sealed class FixedClock(DateTime local) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => new(DateTime.SpecifyKind(local, DateTimeKind.Unspecified), TimeSpan.Zero);

    public override TimeZoneInfo LocalTimeZone => TimeZoneInfo.Utc;
}
