namespace PeftHost.Engine.Runtime;

/// <summary>
/// Frees the native objects TorchSharp releases only from a finalizer: the c10::Scalar behind every implicit
/// conversion of a number (x.mul_(0.5), add_(y, alpha: a): hundreds per forward pass, in our code and in
/// TorchSharp's own) and any tensor handle nobody disposed. The managed heap of a training loop stays small, so
/// the GC that would finalize them runs rarely; meanwhile these small blocks sit among the activation buffers that
/// each step frees, glibc cannot reuse those holes for the next step's buffers, and the process grows without
/// bound (the training benchmark: +3 to +6 MiB per step, 4x128; flat with one gen-0 collection per step, at no
/// measurable cost). Call it once per unit of work that allocates many of them (an optimiser step).
/// </summary>
public static class NativeFinalizers
{
    /// <summary>A gen-0 collection, then the finalizers it queued (the native frees happen there).</summary>
    public static void Run()
    {
        GC.Collect(0, GCCollectionMode.Forced, blocking: true);
        GC.WaitForPendingFinalizers();
    }
}
