using PeftHost.Fuzz;
using SharpFuzz;

// dotnet PeftHost.Fuzz.dll TARGET                 under afl-fuzz: the SharpFuzz fork server; alone: one input from stdin
// dotnet PeftHost.Fuzz.dll TARGET --replay PATH... each file (or every file of a folder) in-process: outcome or crash, exit 1 on a crash
// dotnet PeftHost.Fuzz.dll --list                  the targets
// dotnet PeftHost.Fuzz.dll --write-seeds DIR       the generated seeds (binary formats) into DIR/TARGET/; the JSON and text seeds are written by hand
if (args.Length == 0 || args[0] is "--help" or "-h")
{
    Console.Error.WriteLine("usage: PeftHost.Fuzz TARGET | TARGET --replay PATH... | --list");
    return 2;
}
if (args[0] == "--list")
{
    foreach (FuzzTarget t in FuzzTargets.All) Console.WriteLine($"{t.Name,-18} {t.Description}");
    return 0;
}
if (args[0] == "--write-seeds" && args.Length == 2)
{
    foreach ((string targetName, string file, byte[] bytes) in SeedFiles.Generated())
    {
        string dir = Path.Combine(args[1], targetName);
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, file), bytes);
    }
    return 0;
}
FuzzTarget target;
try { target = FuzzTargets.Get(args[0]); }
catch (ArgumentException e) { Console.Error.WriteLine(e.Message); return 2; }

if (args.Length > 1 && args[1] == "--replay")
{
    int crashes = 0;
    IEnumerable<string> files = args.Skip(2).SelectMany(p => Directory.Exists(p) ? Directory.GetFiles(p).Order(StringComparer.Ordinal) : (IEnumerable<string>)[p]);
    foreach (string file in files)
    {
        try
        {
            Console.WriteLine($"{target.Execute(File.ReadAllBytes(file)),-8} {file}");
        }
        catch (Exception e)
        {
            crashes++;
            Console.WriteLine($"CRASH    {file}\n{e}");
        }
    }
    return crashes == 0 ? 0 : 1;
}

// Persistent mode: one process runs input after input; an exception escaping Execute is a crash for AFL++.
Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target.Execute(buffer.ToArray());
});
return 0;
