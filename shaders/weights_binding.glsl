// Binding 0: the weights, as floats (F32) or 32-bit words (the other types).
#if defined(TYPE_F32)
layout(binding = 0) readonly buffer Weights { float w[]; };
#else
layout(binding = 0) readonly buffer Weights { uint w32[]; };
#endif
