#version 450
// Row-wise softmax of n values: exp(x - max) / sum. One workgroup per row.

layout(constant_id = 0) const uint WG = 64;   // workgroup size, a power of two
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Params { uint rows; uint n; } p;

shared float partial[WG];

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return;
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint base = row * p.n;

    float m = -3.402823466e38;
    for (uint i = tid; i < p.n; i += WG) {
        m = max(m, x[base + i]);
    }
    partial[tid] = m;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] = max(partial[tid], partial[tid + s]);
        }
        barrier();
    }
    m = partial[0];
    barrier();   // everyone has read the max before partial is reused

    float sum = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
        sum += exp(x[base + i] - m);
    }
    partial[tid] = sum;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        barrier();
    }
    const float inv = 1.0 / partial[0];
    for (uint i = tid; i < p.n; i += WG) {
        y[base + i] = exp(x[base + i] - m) * inv;
    }
}
