using System.Globalization;
using System.Text;

namespace PeftHost.Tokenizers.Jinja.Runtime;

/// <summary>
/// Python's datetime.strftime in the C locale (what transformers' strftime_now calls): %a %A %b %B %c %d %f
/// %H %I %j %m %M %p %S %U %w %W %x %X %y %Y %z %Z %%, and glibc's %-d style flags that drop the padding.
/// </summary>
internal static class PyStrftime
{
    private static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] Months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    public static string Format(DateTime t, string format)
    {
        var sb = new StringBuilder(format.Length * 2);
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                sb.Append(format[i]);
                continue;
            }
            char c = format[++i];
            bool unpadded = false;
            if (c == '-' && i + 1 < format.Length)
            {
                unpadded = true;
                c = format[++i];
            }
            string Num(int v, int width) => unpadded ? v.ToString(CultureInfo.InvariantCulture) : v.ToString(new string('0', width), CultureInfo.InvariantCulture);
            int hour12 = t.Hour % 12 == 0 ? 12 : t.Hour % 12;
            sb.Append(c switch
            {
                'a' => Days[(int)t.DayOfWeek][..3],
                'A' => Days[(int)t.DayOfWeek],
                'b' or 'h' => Months[t.Month - 1][..3],
                'B' => Months[t.Month - 1],
                'c' => $"{Days[(int)t.DayOfWeek][..3]} {Months[t.Month - 1][..3]} {t.Day,2} {t:HH:mm:ss} {t.Year}",
                'd' => Num(t.Day, 2),
                'e' => unpadded ? Num(t.Day, 1) : t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", CultureInfo.InvariantCulture),
                'H' => Num(t.Hour, 2),
                'I' => Num(hour12, 2),
                'j' => Num(t.DayOfYear, 3),
                'm' => Num(t.Month, 2),
                'M' => Num(t.Minute, 2),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'S' => Num(t.Second, 2),
                'U' => Num((t.DayOfYear + 6 - (int)t.DayOfWeek) / 7, 2),
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'W' => Num((t.DayOfYear + 6 - ((int)t.DayOfWeek + 6) % 7) / 7, 2),
                'x' => t.ToString("MM/dd/yy", CultureInfo.InvariantCulture),
                'X' => t.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                'y' => Num(t.Year % 100, 2),
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                // strftime_now formats datetime.now(), a naive time: no offset, no zone name.
                'z' or 'Z' => "",
                '%' => "%",
                _ => "%" + (unpadded ? "-" : "") + c,
            });
        }
        return sb.ToString();
    }
}
