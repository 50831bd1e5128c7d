#version 450
// y = W x for one weight type (TYPE_F32, TYPE_F16, TYPE_Q8_0 or TYPE_Q4_0), W row-major
// [rows, cols] in GGML's block layout. One workgroup per row; each invocation sums a strided
// share of the row's blocks, then the workgroup reduces. Variants: USE_16BIT reads W through
// 16-bit storage (VK 16-bit storage feature); without it W is read as 32-bit words and halves
// are extracted. USE_SUBGROUP reduces with subgroupAdd; without it, a shared-memory tree.

#ifdef USE_16BIT
#extension GL_EXT_shader_16bit_storage : require
#endif
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(constant_id = 0) const uint WG = 32;   // workgroup size, a power of two
layout(constant_id = 1) const bool ACC = false; // y[row] += W x (residual connections) instead of y[row] = W x
layout(local_size_x_id = 0) in;

#if defined(TYPE_F32)
layout(binding = 0) readonly buffer Weights { float w[]; };
#elif defined(USE_16BIT)
layout(binding = 0) readonly buffer Weights { uint16_t w16[]; };
#else
layout(binding = 0) readonly buffer Weights { uint w32[]; };
#endif
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Params { uint rows; uint cols; } p;

shared float partial[WG];

#ifndef TYPE_F32
// The 16-bit value at an even byte offset of W.
uint u16at(uint byteOffset)
{
#ifdef USE_16BIT
    return uint(w16[byteOffset >> 1]);
#else
    uint word = w32[byteOffset >> 2];
    return (byteOffset & 2u) != 0u ? (word >> 16) : (word & 0xFFFFu);
#endif
}

float halfAt(uint byteOffset) { return unpackHalf2x16(u16at(byteOffset)).x; }
#endif

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return;   // uniform across the workgroup, so no barrier is skipped by part of it
    }
    const uint tid = gl_LocalInvocationID.x;
    float sum = 0.0;

#if defined(TYPE_F32)
    const uint base = row * p.cols;
    for (uint i = tid; i < p.cols; i += WG) {
        sum += w[base + i] * x[i];
    }
#elif defined(TYPE_F16)
    const uint base = row * p.cols * 2u;
    for (uint i = tid; i < p.cols; i += WG) {
        sum += halfAt(base + i * 2u) * x[i];
    }
#elif defined(TYPE_Q8_0)
    const uint blocks = p.cols / 32u;
    const uint rowBytes = blocks * 34u;
    for (uint b = tid; b < blocks; b += WG) {
        const uint off = row * rowBytes + b * 34u;
        const float d = halfAt(off);
        const uint xb = b * 32u;
        float s = 0.0;
        for (uint k = 0u; k < 16u; k++) {
            const uint h = u16at(off + 2u + k * 2u);
            // Sign-extend the two int8 values packed in the halfword.
            const int q0 = int(h << 24) >> 24;
            const int q1 = int(h << 16) >> 24;
            s += float(q0) * x[xb + 2u * k] + float(q1) * x[xb + 2u * k + 1u];
        }
        sum += d * s;
    }
#elif defined(TYPE_Q4_0)
    const uint blocks = p.cols / 32u;
    const uint rowBytes = blocks * 18u;
    for (uint b = tid; b < blocks; b += WG) {
        const uint off = row * rowBytes + b * 18u;
        const float d = halfAt(off);
        const uint xb = b * 32u;
        float s = 0.0;
        for (uint k = 0u; k < 8u; k++) {
            const uint h = u16at(off + 2u + k * 2u);
            // Byte j holds element j (low nibble) and element j + 16 (high nibble).
            const uint j = 2u * k;
            s += (float(h & 0xFu) - 8.0) * x[xb + j]
               + (float((h >> 4) & 0xFu) - 8.0) * x[xb + j + 16u]
               + (float((h >> 8) & 0xFu) - 8.0) * x[xb + j + 1u]
               + (float((h >> 12) & 0xFu) - 8.0) * x[xb + j + 17u];
        }
        sum += d * s;
    }
#else
#error "define one of TYPE_F32, TYPE_F16, TYPE_Q8_0, TYPE_Q4_0"
#endif

#ifdef USE_SUBGROUP
    sum = subgroupAdd(sum);
    if (gl_SubgroupInvocationID == 0u) {
        partial[gl_SubgroupID] = sum;
    }
    barrier();
    if (tid == 0u) {
        float total = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++) {
            total += partial[i];
        }
        y[row] = ACC ? y[row] + total : total;
    }
#else
    partial[tid] = sum;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        barrier();
    }
    if (tid == 0u) {
        y[row] = ACC ? y[row] + partial[0] : partial[0];
    }
#endif
}
