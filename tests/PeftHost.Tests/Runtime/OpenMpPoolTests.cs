using PeftHost.Engine.Runtime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace PeftHost.Tests.Runtime;

/// <summary>
/// A thread that ran a parallel libtorch op keeps an OpenMP worker team (threads that inherit its name); releasing
/// it ends those workers, so that libgomp's count of its threads stays within the CPUs and it keeps spinning between
/// the decoding thread's small ops (see OpenMpPool).
/// </summary>
public sealed class OpenMpPoolTests
{
    [Fact]
    public void Releasing_a_thread_ends_its_OpenMP_workers()
    {
        int threads = torch.get_num_threads();
        Assert.True(threads >= 2, $"libtorch runs {threads} intra-op thread here: no worker team to release");
        const string Name = "omp-pool-test";
        (int Before, int After, bool Released) seen = default;
        var thread = new Thread(() =>
        {
            using (Tensor a = torch.ones(1024, 1024))
            using (Tensor b = a.sum()) { }   // big enough for libtorch to split across its threads
            int before = Named(Name);
            bool released = OpenMpPool.ReleaseCallingThread();
            // Pool threads end asynchronously after the release returns.
            int after = before;
            for (int i = 0; i < 100 && (after = Named(Name)) >= before; i++) Thread.Sleep(10);
            seen = (before, after, released);
        }) { Name = Name };
        thread.Start();
        thread.Join();
        Assert.True(seen.Released, "omp_pause_resource_all was not found in the loaded libgomp");
        Assert.True(seen.Before >= 2, $"{seen.Before} threads named {Name} after a parallel op (expected the thread and its workers)");
        Assert.Equal(1, seen.After);
    }

    // Threads of this process whose name (comm, which a new thread inherits from its creator) is `name`.
    private static int Named(string name) =>
        Directory.GetDirectories("/proc/self/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).TrimEnd('\n') == name);
}
