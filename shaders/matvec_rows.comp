#version 450
// y = W x for one weight type (TYPE_F32, TYPE_F16, TYPE_Q8_0 or TYPE_Q4_0), W row-major
// [rows, cols] in GGML's block layout: the row-per-invocation layout for CPU devices (lavapipe).
// Each invocation computes NR whole rows, so there is no reduction and no barrier; the x index is
// the same across the workgroup (a single load broadcast to every lane on llvmpipe), and weights
// are read as 32-bit words (vec4 / uvec4 where the row length allows it), two quantized blocks
// at a time so that each pair starts on a 4-byte boundary. Rows past the end compute a clamped
// row and skip the store, so every invocation runs the same loop.

layout(constant_id = 0) const uint WG = 8;      // invocations per workgroup (the subgroup size)
layout(constant_id = 1) const bool ACC = false; // y[row] += W x (residual connections) instead of y[row] = W x
layout(constant_id = 2) const uint NR = 1;      // rows per invocation (1 or 2)
layout(local_size_x_id = 0) in;

#if defined(TYPE_F32)
layout(binding = 0) readonly buffer Weights { float w[]; };
layout(binding = 0) readonly buffer Weights4 { vec4 w4[]; };
#elif defined(TYPE_F16)
layout(binding = 0) readonly buffer Weights { uint w32[]; };
layout(binding = 0) readonly buffer Weights4 { uvec4 w128[]; };
#else
layout(binding = 0) readonly buffer Weights { uint w32[]; };
#endif
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Params { uint rows; uint cols; } p;

#ifndef TYPE_F32
float halfAt(uint off)
{
    const uint word = w32[off >> 2];
    return unpackHalf2x16((off & 2u) != 0u ? (word >> 16) : (word & 0xFFFFu)).x;
}
#endif

#if defined(TYPE_Q4_0)
// d * sum of the 32 nibbles of one block (4 words of quants, byte j: element j low, j + 16 high) times x.
float blockDot(float d, uvec4 q, uint xb)
{
    vec4 lo = vec4(0.0), hi = vec4(0.0);
    for (uint i = 0u; i < 4u; i++) {
        const uint v = q[i];
        const vec4 l = vec4(uvec4(v, v >> 8, v >> 16, v >> 24) & 0xFu) - 8.0;
        const vec4 h = vec4(uvec4(v >> 4, v >> 12, v >> 20, v >> 28) & 0xFu) - 8.0;
        lo += l * x4[(xb >> 2) + i];
        hi += h * x4[(xb >> 2) + 4u + i];
    }
    const vec4 s = lo + hi;
    return d * (s.x + s.y + s.z + s.w);
}
#elif defined(TYPE_Q8_0)
vec4 bytes4(uint v) { return vec4(ivec4(v << 24, v << 16, v << 8, v) >> 24); }
#endif

#if defined(TYPE_Q4_0) || defined(TYPE_Q8_0)
// The word at a 2-byte-aligned byte offset.
uint wordAt(uint off)
{
    const uint i = off >> 2;
    return (off & 2u) == 0u ? w32[i] : (w32[i] >> 16) | (w32[i + 1u] << 16);
}
#endif

float rowDot(uint row)
{
    float sum = 0.0;
#if defined(TYPE_F32)
    const uint base = row * p.cols;
    if ((p.cols & 3u) == 0u) {
        vec4 s = vec4(0.0);
        for (uint i = 0u; i < p.cols / 4u; i++) {
            s += w4[(base >> 2) + i] * x4[i];
        }
        sum = s.x + s.y + s.z + s.w;
    } else {
        for (uint i = 0u; i < p.cols; i++) {
            sum += w[base + i] * x[i];
        }
    }
#elif defined(TYPE_F16)
    const uint base = row * p.cols * 2u;
    if ((p.cols & 7u) == 0u) {
        vec4 s = vec4(0.0);
        for (uint i = 0u; i < p.cols / 8u; i++) {
            const uvec4 v = w128[(base >> 4) + i];
            s += vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y)) * x4[2u * i]
               + vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w)) * x4[2u * i + 1u];
        }
        sum = s.x + s.y + s.z + s.w;
    } else {
        for (uint i = 0u; i < p.cols; i++) {
            sum += unpackHalf2x16(w32[(base + 2u * i) >> 2] >> (((base + 2u * i) & 2u) * 8u)).x * x[i];
        }
    }
#elif defined(TYPE_Q4_0)
    const uint blocks = p.cols / 32u;
    const uint base = row * blocks * 18u;
    if ((blocks & 1u) == 0u) {
        // Pairs of blocks: 36 bytes = 9 words from a 4-byte boundary.
        for (uint b = 0u; b < blocks; b += 2u) {
            const uint o = (base + b * 18u) >> 2;
            const uint w0 = w32[o], w1 = w32[o + 1u], w2 = w32[o + 2u], w3 = w32[o + 3u], w4 = w32[o + 4u];
            const uvec4 qa = uvec4((w0 >> 16) | (w1 << 16), (w1 >> 16) | (w2 << 16), (w2 >> 16) | (w3 << 16), (w3 >> 16) | (w4 << 16));
            const uvec4 qb = uvec4(w32[o + 5u], w32[o + 6u], w32[o + 7u], w32[o + 8u]);
            sum += blockDot(unpackHalf2x16(w0).x, qa, b * 32u) + blockDot(unpackHalf2x16(w4 >> 16).x, qb, b * 32u + 32u);
        }
    } else {
        for (uint b = 0u; b < blocks; b++) {
            const uint off = base + b * 18u;
            const uvec4 q = uvec4(wordAt(off + 2u), wordAt(off + 6u), wordAt(off + 10u), wordAt(off + 14u));
            sum += blockDot(halfAt(off), q, b * 32u);
        }
    }
#elif defined(TYPE_Q8_0)
    const uint blocks = p.cols / 32u;
    const uint base = row * blocks * 34u;
    for (uint b = 0u; b < blocks; b++) {
        const uint off = base + b * 34u;
        const uint xb = b * 8u;
        vec4 s = vec4(0.0);
        if ((off & 2u) == 0u) {
            // d in the low half of the first word: the quants straddle words.
            const uint o = off >> 2;
            uint prev = w32[o];
            const float d = unpackHalf2x16(prev).x;
            for (uint i = 0u; i < 8u; i++) {
                const uint next = w32[o + 1u + i];
                s += bytes4((prev >> 16) | (next << 16)) * x4[xb + i];
                prev = next;
            }
            sum += d * (s.x + s.y + s.z + s.w);
        } else {
            const uint o = (off + 2u) >> 2;
            const float d = unpackHalf2x16(w32[o - 1u] >> 16).x;
            for (uint i = 0u; i < 8u; i++) {
                s += bytes4(w32[o + i]) * x4[xb + i];
            }
            sum += d * (s.x + s.y + s.z + s.w);
        }
    }
#else
#error "define one of TYPE_F32, TYPE_F16, TYPE_Q8_0, TYPE_Q4_0"
#endif
    return sum;
}

void main()
{
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    for (uint r = 0u; r < NR; r++) {
        const uint row = (group * NR + r) * WG + gl_LocalInvocationID.x;
        const float s = rowDot(min(row, p.rows - 1u));
        if (row < p.rows) {
            y[row] = ACC ? y[row] + s : s;
        }
    }
}
