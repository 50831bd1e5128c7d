using System.Collections.Immutable;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using PeftHost.Abstractions.Plugins;

namespace PeftHost.Engine.Plugins;

/// <summary>
/// Reads a plugin's manifest (its <see cref="PeftPluginAttribute"/> and <see cref="PeftTunerAttribute"/>s)
/// from assembly metadata without loading the assembly, so that an incompatible or conflicting
/// plugin is refused before any of its code runs.
/// </summary>
public static class PluginManifestReader
{
    /// <summary>
    /// The manifest of the assembly at <paramref name="path"/>, or null when it is a .NET assembly
    /// without <see cref="PeftPluginAttribute"/> (e.g. a plugin's private dependency).
    /// </summary>
    /// <exception cref="BadImageFormatException">The file is not a valid .NET assembly.</exception>
    public static PluginManifest? TryRead(string path)
    {
        using FileStream stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        if (!pe.HasMetadata) throw new BadImageFormatException($"{path} is not a .NET assembly (no metadata).");
        MetadataReader md = pe.GetMetadataReader();
        AssemblyDefinition assembly = md.GetAssemblyDefinition();

        string? id = null, contract = null, informational = null;
        var tuners = new List<(string, string)>();
        var provider = new AttributeValueProvider();
        foreach (CustomAttributeHandle handle in assembly.GetCustomAttributes())
        {
            CustomAttribute attribute = md.GetCustomAttribute(handle);
            string name = AttributeTypeName(md, attribute);
            if (name == typeof(PeftPluginAttribute).FullName)
            {
                var args = attribute.DecodeValue(provider).FixedArguments;
                id = (string?)args[0].Value;
                contract = (string?)args[1].Value;
            }
            else if (name == typeof(PeftTunerAttribute).FullName)
            {
                var args = attribute.DecodeValue(provider).FixedArguments;
                tuners.Add(((string?)args[0].Value ?? "", (string?)args[1].Value ?? ""));
            }
            else if (name == "System.Reflection.AssemblyInformationalVersionAttribute")
            {
                informational = (string?)attribute.DecodeValue(provider).FixedArguments[0].Value;
            }
        }
        if (id is null) return null;
        Version version = assembly.Version;
        return new PluginManifest(id, informational ?? version.ToString(), version, contract ?? "", tuners, Path.GetFullPath(path));
    }

    private static string AttributeTypeName(MetadataReader md, CustomAttribute attribute)
    {
        EntityHandle type = attribute.Constructor.Kind switch
        {
            HandleKind.MemberReference => md.GetMemberReference((MemberReferenceHandle)attribute.Constructor).Parent,
            HandleKind.MethodDefinition => md.GetMethodDefinition((MethodDefinitionHandle)attribute.Constructor).GetDeclaringType(),
            _ => default,
        };
        return type.Kind switch
        {
            HandleKind.TypeReference => Join(md.GetString(md.GetTypeReference((TypeReferenceHandle)type).Namespace), md.GetString(md.GetTypeReference((TypeReferenceHandle)type).Name)),
            HandleKind.TypeDefinition => Join(md.GetString(md.GetTypeDefinition((TypeDefinitionHandle)type).Namespace), md.GetString(md.GetTypeDefinition((TypeDefinitionHandle)type).Name)),
            _ => "",
        };
    }

    private static string Join(string ns, string name) => ns.Length == 0 ? name : ns + "." + name;

    // Decodes attribute arguments: strings, primitives, and System.Type (as its serialized name).
    private sealed class AttributeValueProvider : ICustomAttributeTypeProvider<object?>
    {
        private const string SystemType = "System.Type";

        public object? GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode;
        public object? GetSystemType() => SystemType;
        public object? GetSZArrayType(object? elementType) => null;
        public object? GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => null;
        public object? GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind)
        {
            TypeReference type = reader.GetTypeReference(handle);
            return Join(reader.GetString(type.Namespace), reader.GetString(type.Name));
        }
        public object? GetTypeFromSerializedName(string name) => name;
        public PrimitiveTypeCode GetUnderlyingEnumType(object? type) => PrimitiveTypeCode.Int32;
        public bool IsSystemType(object? type) => type is string name && name == SystemType;
    }
}
