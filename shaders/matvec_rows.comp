#version 450
// Y[t, r] (+)= sum_k X[t, k] W[r, k] for one weight type (TYPE_F32, TYPE_F16, TYPE_Q8_0 or
// TYPE_Q4_0), W row-major [rows, cols] in GGML's block layout, X [tokens, cols], Y [tokens, rows]:
// the row-per-invocation layout for CPU devices (lavapipe), for decode (tokens = 1) and prefill.
// Each invocation computes one whole row for NT tokens (workgroup y), so there is no reduction and
// no barrier, each weight is read and dequantized once per NT tokens, and the x index is the same
// across the workgroup. Weights are read as 32-bit words (vec4 / uvec4 where the row length
// allows it), two quantized blocks at a time so that each pair starts on a 4-byte boundary. Rows
// and tokens past the end compute clamped ones and skip the store, so every invocation runs the
// same loop. Workgroups: x (+ z * numGroups.x) over rows / WG, y over tokens / NT.

layout(constant_id = 0) const uint WG = 8;      // invocations per workgroup (the subgroup size)
layout(constant_id = 1) const bool ACC = false; // y[row] += W x (residual connections) instead of y[row] = W x
layout(constant_id = 2) const uint NT = 1;      // tokens per invocation (x rows sharing each weight read)
layout(constant_id = 3) const bool VEC = true;  // cols % 8 == 0: f32 / f16 rows read as vec4 / uvec4 (a
                                                // constant, not a branch: llvmpipe runs both sides of a branch)
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

layout(push_constant) uniform Params { uint rows; uint cols; uint tokens; } p;


#if defined(TYPE_Q8_0)
vec4 bytes4(uint v) { return vec4(ivec4(v << 24, v << 16, v << 8, v) >> 24); }
#endif

// Per token of this invocation: the start of its x row, and the partial sums.
uint xrow[NT];
vec4 acc[NT];

// acc[t] += 4 weights (columns k..k+3, k a multiple of 4) times x. Needs cols % 4 == 0.
void addVec(vec4 v, uint k)
{
    for (uint t = 0u; t < NT; t++) {
        acc[t] += v * x4[(xrow[t] + k) >> 2];
    }
}

void addScalar(float v, uint k)
{
    for (uint t = 0u; t < NT; t++) {
        acc[t].x += v * x[xrow[t] + k];
    }
}

#if defined(TYPE_Q4_0)
// One block: d, 4 words of quants (byte j: element j low nibble, element j + 16 high), at column k.
void addQ4(float d, uvec4 q, uint k)
{
    for (uint i = 0u; i < 4u; i++) {
        const uint v = q[i];
        addVec(d * (vec4(uvec4(v, v >> 8, v >> 16, v >> 24) & 0xFu) - 8.0), k + 4u * i);
        addVec(d * (vec4(uvec4(v >> 4, v >> 12, v >> 20, v >> 28) & 0xFu) - 8.0), k + 16u + 4u * i);
    }
}
#endif


void rowDot(uint row)
{
#if defined(TYPE_F32)
    const uint base = row * p.cols;
    if (VEC) {
        for (uint i = 0u; i < p.cols / 4u; i++) {
            addVec(w4[(base >> 2) + i], 4u * i);
        }
    } else {
        for (uint i = 0u; i < p.cols; i++) {
            addScalar(w[base + i], i);
        }
    }
#elif defined(TYPE_F16)
    const uint base = row * p.cols * 2u;
    if (VEC) {
        for (uint i = 0u; i < p.cols / 8u; i++) {
            const uvec4 v = w128[(base >> 4) + i];
            addVec(vec4(unpackHalf2x16(v.x), unpackHalf2x16(v.y)), 8u * i);
            addVec(vec4(unpackHalf2x16(v.z), unpackHalf2x16(v.w)), 8u * i + 4u);
        }
    } else {
        for (uint i = 0u; i < p.cols; i++) {
            addScalar(unpackHalf2x16(w32[(base + 2u * i) >> 2] >> (((base + 2u * i) & 2u) * 8u)).x, i);
        }
    }
#elif defined(TYPE_Q4_0)
    const uint blocks = p.cols / 32u;
    const uint base = row * blocks * 18u;
    for (uint b = 0u; b < blocks; b++) {
        // 18 bytes from a 2-byte boundary lie in 5 words; a select (not a branch) aligns them.
        const uint off = base + b * 18u;
        const uint o = off >> 2;
        const bool odd = (off & 2u) != 0u;
        const uint w0 = w32[o], w1 = w32[o + 1u], w2 = w32[o + 2u], w3 = w32[o + 3u], w4 = w32[o + 4u];
        const float d = unpackHalf2x16(odd ? w0 >> 16 : w0).x;
        const uvec4 q = odd ? uvec4(w1, w2, w3, w4)
                            : uvec4((w0 >> 16) | (w1 << 16), (w1 >> 16) | (w2 << 16), (w2 >> 16) | (w3 << 16), (w3 >> 16) | (w4 << 16));
        addQ4(d, q, b * 32u);
    }
#elif defined(TYPE_Q8_0)
    const uint blocks = p.cols / 32u;
    const uint base = row * blocks * 34u;
    for (uint b = 0u; b < blocks; b++) {
        // 34 bytes from a 2-byte boundary lie in 9 words; a select (not a branch) aligns them.
        const uint off = base + b * 34u;
        const uint o = off >> 2;
        const bool odd = (off & 2u) != 0u;
        uint prev = w32[o];
        const float d = unpackHalf2x16(odd ? prev >> 16 : prev).x;
        for (uint i = 0u; i < 8u; i++) {
            const uint next = w32[o + 1u + i];
            addVec(d * bytes4(odd ? next : (prev >> 16) | (next << 16)), b * 32u + 4u * i);
            prev = next;
        }
    }
#else
#error "define one of TYPE_F32, TYPE_F16, TYPE_Q8_0, TYPE_Q4_0"
#endif
}

void main()
{
    const uint group = gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x;
    const uint row = group * WG + gl_LocalInvocationID.x;
    const uint tok0 = gl_WorkGroupID.y * NT;
    for (uint t = 0u; t < NT; t++) {
        xrow[t] = min(tok0 + t, p.tokens - 1u) * p.cols;
        acc[t] = vec4(0.0);
    }
    rowDot(min(row, p.rows - 1u));
    if (row < p.rows) {
        for (uint t = 0u; t < NT; t++) {
            if (tok0 + t < p.tokens) {
                const uint o = (tok0 + t) * p.rows + row;
                const float s = (acc[t].x + acc[t].y) + (acc[t].z + acc[t].w);
                y[o] = ACC ? y[o] + s : s;
            }
        }
    }
}
