/*
 * libtorch's CPU build links Intel oneMKL, which chooses its generic SSE code paths on non-Intel
 * CPUs: on this project's AMD EPYC machines SGEMM ran at about half the speed the CPU's AVX-512
 * allows. MKL asks mkl_serv_intel_cpu_true() whether to trust its own feature detection (cpuid);
 * libtorch_cpu.so exports that function, so a definition loaded into the global symbol scope first
 * takes precedence. MKL still detects the instruction sets the CPU really has and uses only those.
 * Loaded only on AMD CPUs, and never when PEFTHOST_MKL_VENDOR_SHIM=0 (see TorchCpuMath.cs).
 */
int mkl_serv_intel_cpu_true(void) { return 1; }
