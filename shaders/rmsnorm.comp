#version 450
// y = x / sqrt(mean(x^2) + eps) * weight, per row of n values. One workgroup per row.

layout(constant_id = 0) const uint WG = 64;   // workgroup size, a power of two
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Wt { float weight[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Params { uint rows; uint n; float eps; } p;

shared float partial[WG];

void main()
{
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) {
        return;
    }
    const uint tid = gl_LocalInvocationID.x;
    const uint base = row * p.n;
    float sum = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
        sum += x[base + i] * x[base + i];
    }
    partial[tid] = sum;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (tid < s) {
            partial[tid] += partial[tid + s];
        }
        barrier();
    }
    const float scale = inversesqrt(partial[0] / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += WG) {
        y[base + i] = x[base + i] * scale * weight[i];
    }
}
