#version 450
// Causal attention over the KV cache with grouped-query heads: one workgroup per (token, head).
// Query t (at position pos0 + t) attends to cache rows 0..pos0 + t of its KV head
// (head / (heads / kvHeads)); scores scaled, softmax (max-subtracted), weighted sum of V.
// Q and O are [tokens, heads * headDim]; the caches [capacity, kvHeads * headDim].

layout(constant_id = 0) const uint WG = 64;          // a power of two
layout(constant_id = 1) const uint MAX_KEYS = 4096;  // cache capacity bound (scores in shared memory)
layout(constant_id = 2) const uint MAX_HEAD_DIM = 256;
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer KCache { float kc[]; };
layout(binding = 2) readonly buffer VCache { float vc[]; };
layout(binding = 3) writeonly buffer O { float o[]; };

layout(push_constant) uniform Params { uint tokens; uint heads; uint kvHeads; uint headDim; uint pos0; float scale; } p;

shared float scores[MAX_KEYS];
shared float qs[MAX_HEAD_DIM];
shared float red[WG];

void main()
{
    const uint wg = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (wg >= p.tokens * p.heads) {
        return;
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint t = wg / p.heads;
    const uint h = wg % p.heads;
    const uint kvh = h / (p.heads / p.kvHeads);
    const uint n = p.pos0 + t + 1u;
    const uint kvStride = p.kvHeads * p.headDim;
    const uint qBase = (t * p.heads + h) * p.headDim;
    for (uint d = tid; d < p.headDim; d += WG) {
        qs[d] = q[qBase + d] * p.scale;
    }
    barrier();

    float m = -3.402823466e38;
    for (uint j = tid; j < n; j += WG) {
        const uint kBase = j * kvStride + kvh * p.headDim;
        float s = 0.0;
        for (uint d = 0u; d < p.headDim; d++) {
            s += qs[d] * kc[kBase + d];
        }
        scores[j] = s;
        m = max(m, s);
    }
    red[tid] = m;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) red[tid] = max(red[tid], red[tid + s]);
        barrier();
    }
    m = red[0];
    barrier();
    float sum = 0.0;
    for (uint j = tid; j < n; j += WG) {
        const float e = exp(scores[j] - m);
        scores[j] = e;
        sum += e;
    }
    red[tid] = sum;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) red[tid] += red[tid + s];
        barrier();
    }
    const float inv = 1.0 / red[0];
    for (uint d = tid; d < p.headDim; d += WG) {
        float acc = 0.0;
        for (uint j = 0u; j < n; j++) {
            acc += scores[j] * vc[j * kvStride + kvh * p.headDim + d];
        }
        o[qBase + d] = acc * inv;
    }
}
