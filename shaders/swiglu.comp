#version 450
// The SwiGLU gate of the fused gate|up projection: Y[t, i] = silu(GU[t, i]) * GU[t, F + i] for
// GU [tokens, 2F] and Y [tokens, F]. One invocation per output element.

layout(local_size_x = 64) in;

layout(binding = 0) readonly buffer GU { float gu[]; };
layout(binding = 1) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Params { uint tokens; uint f; } p;

void main()
{
    const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (gid >= p.tokens * p.f) {
        return;
    }
    const uint t = gid / p.f;
    const uint i = gid % p.f;
    const float g = gu[t * 2u * p.f + i];
    y[gid] = g / (1.0 + exp(-g)) * gu[t * 2u * p.f + p.f + i];
}
