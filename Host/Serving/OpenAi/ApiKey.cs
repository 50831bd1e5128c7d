using System.Security.Cryptography;
using System.Text;

namespace PeftHost.Serving.OpenAi;

/// <summary>The server's API key, checked against <c>Authorization: Bearer KEY</c> in constant time (SHA-256 of both, compared with FixedTimeEquals, so neither the content nor the length of the key leaks through timing).</summary>
public sealed class ApiKey
{
    private readonly byte[] _hash;

    /// <summary>Holds the key's hash only.</summary>
    /// <exception cref="ArgumentException">The key is empty or has surrounding white space.</exception>
    public ApiKey(string key)
    {
        if (string.IsNullOrEmpty(key)) throw new ArgumentException("The API key is empty.", nameof(key));
        if (key.Trim() != key) throw new ArgumentException("The API key begins or ends with white space (a stray newline of a key file?).", nameof(key));
        _hash = SHA256.HashData(Encoding.UTF8.GetBytes(key));
    }

    /// <summary>Whether an Authorization header value is <c>Bearer</c> and this key.</summary>
    public bool Accepts(string? authorization)
    {
        const string scheme = "Bearer ";
        string presented = authorization is not null && authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase) ? authorization[scheme.Length..].Trim() : "";
        byte[] hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        return CryptographicOperations.FixedTimeEquals(hash, _hash) && presented.Length > 0;
    }
}
