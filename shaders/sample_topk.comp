#version 450
// Samples a token id from one row of logits on the device: the k largest logits (k = 1: greedy
// argmax, lowest index on ties), softmax of logit / temperature over them, and the token whose
// cumulative probability first exceeds u (a uniform number from the host). Writes ids[0].
// One workgroup; k <= MAX_K.

layout(constant_id = 0) const uint WG = 256;   // a power of two
layout(constant_id = 1) const uint MAX_K = 64;
layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer Logits { float logits[]; };
layout(binding = 1) writeonly buffer Ids { int ids[]; };

layout(push_constant) uniform Params { uint n; uint offset; uint k; float invTemperature; float u; } p;

shared float redV[WG];
shared uint redI[WG];
shared uint chosen[MAX_K];
shared float chosenV[MAX_K];

bool taken(uint i, uint count)
{
    for (uint c = 0u; c < count; c++) {
        if (chosen[c] == i) return true;
    }
    return false;
}

void main()
{
    const uint tid = gl_LocalInvocationID.x;
    for (uint c = 0u; c < p.k; c++) {
        float best = -3.402823466e38;
        uint bestI = 0xFFFFFFFFu;
        for (uint i = tid; i < p.n; i += WG) {
            const float v = logits[p.offset + i];
            if ((v > best || bestI == 0xFFFFFFFFu) && !taken(i, c)) {
                best = v;
                bestI = i;
            }
        }
        redV[tid] = best;
        redI[tid] = bestI;
        barrier();
        for (uint s = WG / 2u; s > 0u; s >>= 1u) {
            if (tid < s) {
                const float ov = redV[tid + s];
                const uint oi = redI[tid + s];
                if (oi != 0xFFFFFFFFu && (redI[tid] == 0xFFFFFFFFu || ov > redV[tid] || (ov == redV[tid] && oi < redI[tid]))) {
                    redV[tid] = ov;
                    redI[tid] = oi;
                }
            }
            barrier();
        }
        if (tid == 0u) {
            chosen[c] = redI[0];
            chosenV[c] = redV[0];
        }
        barrier();
    }
    if (tid == 0u) {
        uint result = chosen[0];
        if (p.k > 1u) {
            float total = 0.0;
            for (uint c = 0u; c < p.k; c++) total += exp((chosenV[c] - chosenV[0]) * p.invTemperature);
            float cum = 0.0;
            for (uint c = 0u; c < p.k; c++) {
                cum += exp((chosenV[c] - chosenV[0]) * p.invTemperature) / total;
                result = chosen[c];
                if (p.u < cum) break;
            }
        }
        ids[0] = int(result);
    }
}
