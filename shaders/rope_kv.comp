#version 450
// Splits the fused q|k|v projection [tokens, (heads + 2 kvHeads) * headDim] of tokens at
// positions pos0 + t: RoPE on q (into Q [tokens, heads * headDim]) and on k (into the K cache row
// pos0 + t), v copied into the V cache. GGML's normal RoPE: pairs (2i, 2i + 1) rotate by
// pos * base^(-2i / headDim) (the GGUF export permuted Hugging Face's q/k rows to match).
// One invocation per pair.

layout(local_size_x = 64) in;

layout(binding = 0) readonly buffer Qkv { float qkv[]; };
layout(binding = 1) writeonly buffer Q { float q[]; };
layout(binding = 2) writeonly buffer KCache { float kc[]; };
layout(binding = 3) writeonly buffer VCache { float vc[]; };

layout(push_constant) uniform Params { uint tokens; uint heads; uint kvHeads; uint headDim; uint pos0; float log2Base; } p;

void main()
{
    const uint halfD = p.headDim / 2u;
    const uint allHeads = p.heads + 2u * p.kvHeads;
    const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (gid >= p.tokens * allHeads * halfD) {
        return;
    }
    const uint i = gid % halfD;
    const uint h = (gid / halfD) % allHeads;
    const uint t = gid / (halfD * allHeads);
    const uint src = (t * allHeads + h) * p.headDim + 2u * i;
    const float x0 = qkv[src];
    const float x1 = qkv[src + 1u];
    const uint pos = p.pos0 + t;
    if (h >= p.heads + p.kvHeads) {
        const uint dst = (pos * p.kvHeads + (h - p.heads - p.kvHeads)) * p.headDim + 2u * i;
        vc[dst] = x0;
        vc[dst + 1u] = x1;
        return;
    }
    const float theta = float(pos) * exp2(-float(2u * i) / float(p.headDim) * p.log2Base);
    const float c = cos(theta);
    const float s = sin(theta);
    const float y0 = x0 * c - x1 * s;
    const float y1 = x0 * s + x1 * c;
    if (h < p.heads) {
        const uint dst = (t * p.heads + h) * p.headDim + 2u * i;
        q[dst] = y0;
        q[dst + 1u] = y1;
    } else {
        const uint dst = (pos * p.kvHeads + (h - p.heads)) * p.headDim + 2u * i;
        kc[dst] = y0;
        kc[dst + 1u] = y1;
    }
}
