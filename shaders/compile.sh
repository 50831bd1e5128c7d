#!/usr/bin/env bash
# Recompiles every compute shader in shaders/ to SPIR-V. The committed .spv files are what the
# build embeds, so building needs no shader compiler; CI (a test in PeftHost.Vulkan.Tests) runs
# this script into a temporary folder and checks the output equals the committed files byte for
# byte. Flags are fixed here so the output is deterministic for a given glslc (shaderc 2023.2,
# Debian 12's glslc package, produced the committed files).
#
# Usage: shaders/compile.sh [OUT_DIR]      (default: shaders/spv)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/spv}"
mkdir -p "$out"

flags=(--target-env=vulkan1.1 -O -Werror -fshader-stage=compute)

compile() {
    local src="$1" name="$2"
    shift 2
    glslc "${flags[@]}" "$@" -o "$out/$name.spv" "$here/$src"
}

compile add.comp add
compile silu_mul.comp silu_mul
compile rmsnorm.comp rmsnorm
compile softmax.comp softmax
compile rope.comp rope
compile rope_kv.comp rope_kv
compile attention.comp attention
compile swiglu.comp swiglu
compile sample_topk.comp sample_topk
compile copy.comp copy

# Matrix-vector variants: 16-bit storage reads (not for f32) and subgroup reductions, each with
# a fallback for devices without the feature.
for type in f32 f16 q8_0 q4_0; do
    define="-DTYPE_${type^^}"
    compile matvec.comp "matvec_${type}" "$define"
    compile matvec.comp "matvec_${type}_subgroup" "$define" -DUSE_SUBGROUP
    if [[ "$type" != f32 ]]; then
        compile matvec.comp "matvec_${type}_16bit" "$define" -DUSE_16BIT
        compile matvec.comp "matvec_${type}_16bit_subgroup" "$define" -DUSE_16BIT -DUSE_SUBGROUP
    fi
    # Row per invocation (CPU devices such as lavapipe): 32-bit word reads, no subgroup operations.
    compile matvec_rows.comp "matvec_rows_${type}" "$define"
done

# Prefill matrix-matrix products and embedding lookups, one variant per weight type (32-bit word reads).
for type in f32 f16 q8_0 q4_0; do
    compile matmul.comp "matmul_${type}" "-DTYPE_${type^^}"
    compile get_rows.comp "get_rows_${type}" "-DTYPE_${type^^}"
done
