// Element access to a GGML-typed weight matrix stored in a uint[] buffer named w32 (or float[] w
// for TYPE_F32), row-major [rows, cols] in GGML's block layouts: F16 halves, Q8_0 blocks of
// {f16 d, int8 q[32]}, Q4_0 blocks of {f16 d, uint8 nibbles[16]} (element j in the low nibble of
// byte j, element j + 16 in the high nibble), value = d * q (Q4_0: d * (nibble - 8)).

#if !defined(TYPE_F32) && !defined(TYPE_F16) && !defined(TYPE_Q8_0) && !defined(TYPE_Q4_0)
#error "define one of TYPE_F32, TYPE_F16, TYPE_Q8_0, TYPE_Q4_0"
#endif

#ifndef TYPE_F32
uint byteAt(uint off) { return (w32[off >> 2] >> ((off & 3u) * 8u)) & 0xFFu; }
float halfAt(uint off)
{
    const uint word = w32[off >> 2];
    return unpackHalf2x16((off & 2u) != 0u ? (word >> 16) : (word & 0xFFFFu)).x;
}
#endif

// Bytes of one row of `cols` elements.
uint rowBytes(uint cols)
{
#if defined(TYPE_F32)
    return cols * 4u;
#elif defined(TYPE_F16)
    return cols * 2u;
#elif defined(TYPE_Q8_0)
    return cols / 32u * 34u;
#else
    return cols / 32u * 18u;
#endif
}

// Element k of the row starting at byte rowStart.
float weightAt(uint rowStart, uint k)
{
#if defined(TYPE_F32)
    return w[(rowStart >> 2) + k];
#elif defined(TYPE_F16)
    return halfAt(rowStart + k * 2u);
#elif defined(TYPE_Q8_0)
    const uint off = rowStart + (k >> 5) * 34u;
    const int q = int(byteAt(off + 2u + (k & 31u)) << 24) >> 24;
    return halfAt(off) * float(q);
#else
    const uint off = rowStart + (k >> 5) * 18u;
    const uint j = k & 31u;
    const uint b = byteAt(off + 2u + (j & 15u));
    return halfAt(off) * (float(j < 16u ? (b & 0xFu) : (b >> 4)) - 8.0);
#endif
}
