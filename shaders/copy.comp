#version 450
// y = x for n 32-bit words, 4 per invocation: the bandwidth probe of `bench vulkan` (a read and
// a write of every byte), beside vkCmdCopyBuffer.

layout(local_size_x = 64) in;

layout(binding = 0) readonly buffer X { vec4 x[]; };
layout(binding = 1) writeonly buffer Y { vec4 y[]; };

layout(push_constant) uniform Params { uint n4; } p;

void main()
{
    const uint gid = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 64u;
    if (gid < p.n4) {
        y[gid] = x[gid];
    }
}
