#version 450
// Rotary position embedding of x [tokens, heads, headDim] at per-token positions.
// NEOX (Llama in HF weights, "rotate half"): pairs (i, i + headDim/2); otherwise GPT-J style
// pairs (2i, 2i + 1). Angle = pos * base^(-2i / headDim). One invocation per pair.

layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 1) const bool NEOX = true;
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer Positions { int pos[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };

// log2Base is log2(freq_base), computed on the host in double precision.
layout(push_constant) uniform Params { uint tokens; uint heads; uint headDim; float log2Base; } p;

void main()
{
    const uint half_ = p.headDim / 2u;
    const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * WG;
    if (gid >= p.tokens * p.heads * half_) {
        return;
    }
    const uint i = gid % half_;
    const uint th = gid / half_;            // token * heads + head
    const uint token = th / p.heads;
    const uint base = th * p.headDim;
    const uint i0 = NEOX ? base + i : base + 2u * i;
    const uint i1 = NEOX ? base + i + half_ : base + 2u * i + 1u;

    const float invFreq = exp2(-float(2u * i) / float(p.headDim) * p.log2Base);
    const float theta = float(pos[token]) * invFreq;
    const float c = cos(theta);
    const float s = sin(theta);
    const float x0 = x[i0];
    const float x1 = x[i1];
    y[i0] = x0 * c - x1 * s;
    y[i1] = x0 * s + x1 * c;
}
