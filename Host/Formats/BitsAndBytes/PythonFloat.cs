using System.Globalization;

namespace PeftHost.Formats.BitsAndBytes;

/// <summary>
/// Python's <c>repr(float)</c> (what <c>json.dumps</c> writes): the shortest digits that read back to the
/// same double, in fixed notation when the decimal exponent is in [-4, 16), otherwise as <c>1.5e-07</c>
/// (at least two exponent digits, always a sign); a whole number keeps ".0".
/// </summary>
internal static class PythonFloat
{
    public static string Repr(double value)
    {
        if (!double.IsFinite(value)) throw new ArgumentException($"JSON cannot hold {value}.");
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";
        string sign = value < 0 ? "-" : "";
        // .NET's "R" is the shortest round-trip form too; only the layout differs from Python's.
        string r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        int e = r.IndexOfAny(['E', 'e']);
        int exponent = e < 0 ? 0 : int.Parse(r[(e + 1)..], CultureInfo.InvariantCulture);
        string mantissa = e < 0 ? r : r[..e];
        int dot = mantissa.IndexOf('.');
        string digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        int point = (dot < 0 ? mantissa.Length : dot) + exponent;   // value = 0.digits x 10^point
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0') lead++;
        digits = digits[lead..];
        point -= lead;
        digits = digits.TrimEnd('0');
        int scientific = point - 1;
        if (scientific is >= -4 and < 16)
        {
            if (point <= 0) return sign + "0." + new string('0', -point) + digits;
            if (point >= digits.Length) return sign + digits + new string('0', point - digits.Length) + ".0";
            return sign + digits[..point] + "." + digits[point..];
        }
        string fraction = digits.Length > 1 ? "." + digits[1..] : "";
        return sign + digits[0] + fraction + "e" + (scientific < 0 ? "-" : "+") + Math.Abs(scientific).ToString("00", CultureInfo.InvariantCulture);
    }
}
