#version 450
// Embedding lookup: Y[t, :] = W[ids[t], :] dequantized to float32. One invocation per element.
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;

#include "weights_binding.glsl"
layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

layout(push_constant) uniform Params { uint tokens; uint cols; } p;

#include "ggml_types.glsl"

void main()
{
    const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (gid >= p.tokens * p.cols) {
        return;
    }
    const uint t = gid / p.cols;
    const uint k = gid % p.cols;
    y[gid] = weightAt(uint(ids[t]) * rowBytes(p.cols), k);
}
