#version 450
// Y[t, r] (+)= sum_k X[t, k] * W[r, k] for prefill: X float32 [tokens, cols], W [rows, cols] in a
// GGML type, Y float32 [tokens, rows]. Tiled: a workgroup of 64 computes a 32-row x 32-token
// tile, staging 32-wide slices of W (dequantized once per tile) and X in shared memory; each
// invocation accumulates 4 rows x 4 tokens. Any rows / tokens / cols (partial tiles are masked).
// ACC (constant 0) adds to Y (residual connections) instead of storing.
#extension GL_GOOGLE_include_directive : require

layout(constant_id = 0) const bool ACC = false;
layout(local_size_x = 64) in;

#include "weights_binding.glsl"
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; };

layout(push_constant) uniform Params { uint rows; uint cols; uint tokens; } p;

#include "ggml_types.glsl"

const uint TM = 32u, TN = 32u, TK = 32u;
shared float ws[TM][TK + 1u];
shared float xs[TN][TK + 1u];

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * TM;
    const uint tok0 = gl_WorkGroupID.y * TN;
    const uint rg = (tid & 7u) * 4u;    // this invocation's 4 rows within the tile
    const uint tg = (tid >> 3) * 4u;    // and 4 tokens
    const uint rb = rowBytes(p.cols);
    float acc[4][4];
    for (uint i = 0u; i < 4u; i++) for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;

    for (uint k0 = 0u; k0 < p.cols; k0 += TK) {
        // 32 x 32 elements of each tile, 16 per invocation: row/token (tid >> 1), k half (tid & 1).
        const uint lr = tid >> 1;
        const uint kh = (tid & 1u) * 16u;
        const uint r = row0 + lr;
        const uint t = tok0 + lr;
        for (uint kk = 0u; kk < 16u; kk++) {
            const uint k = k0 + kh + kk;
            ws[lr][kh + kk] = (r < p.rows && k < p.cols) ? weightAt(r * rb, k) : 0.0;
            xs[lr][kh + kk] = (t < p.tokens && k < p.cols) ? x[t * p.cols + k] : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < TK; kk++) {
            float wv[4], xv[4];
            for (uint i = 0u; i < 4u; i++) { wv[i] = ws[rg + i][kk]; xv[i] = xs[tg + i][kk]; }
            for (uint i = 0u; i < 4u; i++) for (uint j = 0u; j < 4u; j++) acc[i][j] += wv[i] * xv[j];
        }
        barrier();
    }
    for (uint j = 0u; j < 4u; j++) {
        const uint t = tok0 + tg + j;
        if (t >= p.tokens) continue;
        for (uint i = 0u; i < 4u; i++) {
            const uint r = row0 + rg + i;
            if (r >= p.rows) continue;
            const uint o = t * p.rows + r;
            y[o] = ACC ? y[o] + acc[i][j] : acc[i][j];
        }
    }
}
