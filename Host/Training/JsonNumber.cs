using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace PeftHost.Training;

/// <summary>A JSON number as a double, whether it was parsed from text or built from an int, long or double.</summary>
internal static class JsonNumber
{
    public static bool Is(JsonNode? n) => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number;

    public static double Get(JsonNode n) => double.Parse(n.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture);

    public static double? GetOrNull(JsonNode? n) => n is null ? null : Get(n);
}
