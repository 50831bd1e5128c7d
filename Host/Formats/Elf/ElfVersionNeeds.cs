// Reads and edits the symbol-version requirements (SHT_GNU_verneed) of an ELF64 little-endian
// shared library. It exists for one job: TorchSharp 0.107's libLibTorchSharp.so asks for
// GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks, although nothing in the library binds to it
// (see shared/notes/torchsharp-glibc.md). Marking that requirement weak lets the loader accept it.
//
// This file is compiled twice: into PeftHost.Formats (where PEFTHOST_FORMATS is defined), and by
// MSBuild's RoslynCodeTaskFactory as the build task that patches every TorchSharp output folder
// (build/TorchSharpNativeFix.targets). One source, so the build and `pefthost doctor` agree.
// It must stay BCL-only and self-contained.

#nullable enable
using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace PeftHost.Formats.Elf
{
    /// <summary>The state of one version requirement in an ELF file.</summary>
    public enum VersionNeedState
    {
        /// <summary>The file does not require that version.</summary>
        Absent,
        /// <summary>The file requires it, and the loader fails when it is missing.</summary>
        Required,
        /// <summary>The requirement is marked weak: the loader accepts its absence.</summary>
        Weak,
    }

    /// <summary>Inspects and weakens GNU symbol-version requirements in ELF64 little-endian files.</summary>
    public static class ElfVersionNeeds
    {
        private const uint ShtGnuVerneed = 0x6ffffffe;
        private const ushort VerFlagWeak = 0x2;
        private const int VernauxFlagsOffset = 4;

        /// <summary>Reports whether <paramref name="path"/> requires <paramref name="versionName"/> and how.</summary>
        public static VersionNeedState Inspect(string path, string versionName)
        {
            byte[] image = File.ReadAllBytes(path);
            int offset = FindVernauxFlagsOffset(image, path, versionName);
            if (offset < 0) return VersionNeedState.Absent;
            ushort flags = BitConverter.ToUInt16(image, offset);
            return (flags & VerFlagWeak) != 0 ? VersionNeedState.Weak : VersionNeedState.Required;
        }

        /// <summary>
        /// Marks the requirement weak in place (idempotent; the file size never changes).
        /// Returns the state before the call. The write goes to a temporary file that replaces
        /// the original, so a crash never leaves a half-written library behind.
        /// </summary>
        public static VersionNeedState MarkWeak(string path, string versionName)
        {
            byte[] image = File.ReadAllBytes(path);
            int offset = FindVernauxFlagsOffset(image, path, versionName);
            if (offset < 0) return VersionNeedState.Absent;
            ushort flags = BitConverter.ToUInt16(image, offset);
            if ((flags & VerFlagWeak) != 0) return VersionNeedState.Weak;

            flags |= VerFlagWeak;
            image[offset] = (byte)(flags & 0xff);
            image[offset + 1] = (byte)(flags >> 8);
            string temp = path + ".patching";
            File.WriteAllBytes(temp, image);
            File.Replace(temp, path, null); // atomic rename over the original
            return VersionNeedState.Required;
        }

        /// <summary>
        /// Whether a shared library defines the symbol version <paramref name="versionName"/>
        /// (e.g. whether this machine's libstdc++ provides GLIBCXX_3.4.32). Looks for the
        /// NUL-terminated name in the file, as the version-definition names live in its string table.
        /// </summary>
        public static bool LibraryDefinesVersion(string libraryPath, string versionName)
        {
            byte[] needle = Encoding.ASCII.GetBytes(versionName + "\0");
            byte[] image = File.ReadAllBytes(libraryPath);
            return IndexOf(image, needle) >= 0;
        }

        /// <summary>
        /// The libstdc++ the dynamic loader would pick on this machine, or null when none is found
        /// (not Linux, or an unusual layout). LD_LIBRARY_PATH first, then the usual system folders.
        /// </summary>
        public static string? FindSystemLibStdCxx()
        {
            var folders = new List<string>();
            string? ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
            if (!string.IsNullOrEmpty(ldPath)) folders.AddRange(ldPath!.Split(new[] { ':' }, StringSplitOptions.RemoveEmptyEntries));
            folders.AddRange(new[]
            {
                "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                "/lib/aarch64-linux-gnu", "/usr/lib64", "/lib64", "/usr/lib", "/lib",
            });
            foreach (string folder in folders)
            {
                string candidate = Path.Combine(folder, "libstdc++.so.6");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }

        // Walks the section headers to the verneed section, then its Verneed/Vernaux chains, and
        // returns the file offset of vna_flags for the named version, or -1 when it is not required.
        private static int FindVernauxFlagsOffset(byte[] image, string path, string versionName)
        {
            if (image.Length < 0x40 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F')
                throw new InvalidDataException($"{path}: not an ELF file.");
            if (image[4] != 2 || image[5] != 1)
                throw new InvalidDataException($"{path}: only ELF64 little-endian files are supported.");

            ulong shoff = ReadU64(image, 0x28, path);
            ushort shentsize = ReadU16(image, 0x3A, path);
            ushort shnum = ReadU16(image, 0x3C, path);
            if (shentsize < 64) throw new InvalidDataException($"{path}: section header size {shentsize} is too small.");

            for (int i = 0; i < shnum; i++)
            {
                long header = Checked(path, (long)shoff + (long)i * shentsize, 64, image.Length);
                uint type = ReadU32(image, header + 4, path);
                if (type != ShtGnuVerneed) continue;

                long sectionOffset = (long)ReadU64(image, header + 0x18, path);
                uint link = ReadU32(image, header + 0x28, path);
                if (link >= shnum) throw new InvalidDataException($"{path}: verneed section links to missing section {link}.");
                long strtabHeader = Checked(path, (long)shoff + (long)link * shentsize, 64, image.Length);
                long strtabOffset = (long)ReadU64(image, strtabHeader + 0x18, path);

                long need = sectionOffset;
                for (int guard = 0; guard < 4096; guard++)
                {
                    ushort count = ReadU16(image, need + 2, path);
                    uint auxOffset = ReadU32(image, need + 8, path);
                    uint nextNeed = ReadU32(image, need + 12, path);
                    long aux = need + auxOffset;
                    for (int a = 0; a < count; a++)
                    {
                        uint nameOffset = ReadU32(image, aux + 8, path);
                        uint nextAux = ReadU32(image, aux + 12, path);
                        if (ReadCString(image, strtabOffset + nameOffset, path) == versionName)
                            return (int)Checked(path, aux + VernauxFlagsOffset, 2, image.Length);
                        if (nextAux == 0) break;
                        aux += nextAux;
                    }
                    if (nextNeed == 0) break;
                    need += nextNeed;
                }
            }
            return -1;
        }

        // Plain search: this file also compiles against netstandard2.0 (the MSBuild task), without spans.
        private static int IndexOf(byte[] haystack, byte[] needle)
        {
            for (int i = 0; i <= haystack.Length - needle.Length; i++)
            {
                int j = 0;
                while (j < needle.Length && haystack[i + j] == needle[j]) j++;
                if (j == needle.Length) return i;
            }
            return -1;
        }

        private static long Checked(string path, long offset, int size, int length)
        {
            if (offset < 0 || offset + size > length)
                throw new InvalidDataException($"{path}: ELF structure at offset {offset} runs past the end of the file ({length} bytes).");
            return offset;
        }

        private static ushort ReadU16(byte[] b, long o, string path) => BitConverter.ToUInt16(b, (int)Checked(path, o, 2, b.Length));
        private static uint ReadU32(byte[] b, long o, string path) => BitConverter.ToUInt32(b, (int)Checked(path, o, 4, b.Length));
        private static ulong ReadU64(byte[] b, long o, string path) => BitConverter.ToUInt64(b, (int)Checked(path, o, 8, b.Length));

        private static string ReadCString(byte[] b, long o, string path)
        {
            int start = (int)Checked(path, o, 1, b.Length);
            int end = Array.IndexOf(b, (byte)0, start);
            if (end < 0) throw new InvalidDataException($"{path}: unterminated string at offset {o}.");
            return Encoding.ASCII.GetString(b, start, end - start);
        }
    }

#if !PEFTHOST_FORMATS
    /// <summary>
    /// MSBuild task: weakens the GLIBCXX_3.4.32 requirement of libLibTorchSharp.so in an output
    /// folder when this machine's libstdc++ lacks that version. Never touches the NuGet cache.
    /// </summary>
    public sealed class PatchTorchSharpNative : Microsoft.Build.Utilities.Task
    {
        /// <summary>The libLibTorchSharp.so copy in the output folder.</summary>
        [Microsoft.Build.Framework.Required]
        public string Library { get; set; } = "";

        /// <summary>The version the library requires and the machine may lack.</summary>
        public string Version { get; set; } = "GLIBCXX_3.4.32";

        /// <summary>not-needed | applied | already-applied | not-required.</summary>
        [Microsoft.Build.Framework.Output]
        public string Result { get; set; } = "";

        /// <inheritdoc />
        public override bool Execute()
        {
            if (!File.Exists(Library)) { Result = "absent"; return true; }
            string? libstdcxx = ElfVersionNeeds.FindSystemLibStdCxx();
            if (libstdcxx != null && ElfVersionNeeds.LibraryDefinesVersion(libstdcxx, Version))
            {
                Result = "not-needed";
                return true;
            }
            try
            {
                VersionNeedState before = ElfVersionNeeds.MarkWeak(Library, Version);
                Result = before switch
                {
                    VersionNeedState.Required => "applied",
                    VersionNeedState.Weak => "already-applied",
                    _ => "not-required",
                };
                if (before == VersionNeedState.Required)
                    Log.LogMessage(Microsoft.Build.Framework.MessageImportance.Normal,
                        $"Marked {Version} weak in {Library} (this machine's libstdc++ lacks it).");
                return true;
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
            {
                Log.LogError($"Could not patch {Library} for {Version}: {e.Message}");
                return false;
            }
        }
    }
#endif
}
