"""Golden files for PeftHost's bitsandbytes formats (4-bit NF4/FP4, double quantization, 8-bit Int8Params).

What it does
    bitsandbytes cannot run in the lab (no package, no GPU), so this script transcribes its published
    algorithms into plain torch, function by function (each function below names the bitsandbytes file and
    function it follows), and writes small byte-exact reference files into tests/fixtures/bnb/:

    codec/tables.safetensors       the NF4 and FP4 code tables, their quantization bounds, FP4's sort order,
                                   the signed 8-bit dynamic map and its bounds
    codec/<case>.safetensors       one hand-chosen or random input each, quantized and dequantized
                                   (4-bit: packed bytes, absmax, nested absmax, offset, quant_state JSON bytes;
                                   8-bit: the fp16-rounded input, CB, SCB)
    codec/cases.json               what every case holds and why it was chosen
    models/<case>/base/            a tiny transformers model, save_pretrained in float32
    models/<case>/quantized/       the same model in the layout transformers + bitsandbytes save: config.json
                                   with quantization_config (BitsAndBytesConfig.to_dict()), model.safetensors
                                   with the packed weights and their quant-state tensors
    models/<case>/inputs.json      forward inputs
    models/<case>/logits_base.safetensors       the float32 base
    models/<case>/logits_quantized.safetensors  transformers' model with every quantized weight replaced by its
                                   dequantized value (what bitsandbytes' 4-bit forward computes in float32; for
                                   8-bit the weight-only dequantization PeftHost does, not LLM.int8's int8 matmul)
    models/<case>/meta.json        versions, config, which modules were quantized, the file layout

How to run (the lab: /work/lab/LAB.md)
    source /work/lab/env.sh
    /usr/bin/python3 tools/bnb-reference/make_cases.py [--out tests/fixtures/bnb]
    Deterministic: fixed seeds, and torch runs on one thread (torch's float32 sum, which absmax.mean() uses,
    adds in another order on several threads above 32768 elements).

Which bitsandbytes
    The algorithms are those of bitsandbytes main 95f9af30 (0.50.2.dev0, /work/lab/bitsandbytes-src), whose
    default backend (bitsandbytes/backends/default/ops.py) states them in plain torch and is what bitsandbytes
    runs on a CPU. The tables, the quant-state keys and JSON and Int8Params' SCB / weight_format are the same
    in 0.44.1 (the release PEFT 0.13.2 / transformers 4.44 used), whose 4-bit quantization ran only in CUDA
    (csrc/kernels.cu). The CUDA kernels choose the same codes except at a few points, transcribed below too
    and counted in cases.json ("cuda_differences"):
      * NF4: the CUDA thresholds equal the default backend's float32 midpoints bit for bit and both send a
        value equal to a midpoint to the lower code; they differ only on an all-zero block (CUDA computes
        0 * (1/0) = NaN and writes code 0 (-1.0); the default backend writes the code of 0.0). Both decode to 0.
        (Both 4-bit types: CUDA scales a last partial block by the reciprocal of its absmax, the default backend
        divides; an ulp apart.)
      * FP4: CUDA compares |x| with decimal thresholds (up to 14 ulp from the float32 midpoints) and sends a
        tie to the smaller magnitude; the default backend bucketizes x on the sorted table, so a negative tie
        goes to the larger magnitude. FP4 has two zero codes (0b0000 and 0b1000, both +0.0 in the table):
        CUDA picks by the sign of x, the default backend by torch.argsort's (stable) order of the two equal
        entries, which gives 0b0000 to (-0.0026, 0] and 0b1000 to (0, 0.0026]. Both decode to 0.
      * 8-bit blockwise (the nested absmax): CUDA's dQuantize binary search sends a value on a midpoint up or
        down depending on its search path (the default backend always down), and CUDA scales a last partial
        block by the reciprocal of its absmax where the default backend divides (an ulp apart at most).
    The 8-bit dynamic map comes from torch.linspace, whose last bits depend on the CPU kernel (this machine:
    AVX2, 8 lanes, fused multiply-add); the map is saved in every double-quantized checkpoint
    (nested_quant_map), so readers decode with the map the writer used.

This is our own code (not part of bitsandbytes). Nothing in the build or CI runs it.
"""
import argparse
import importlib.metadata
import json
import os
import shutil
import struct
import sys

import torch

import transformers
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM
from transformers.pytorch_utils import Conv1D

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "bnb")
BNB_COMMIT = "95f9af30 (main, 0.50.2.dev0); tables, keys and JSON also checked against tag 0.44.1"

torch.set_num_threads(1)


# =============================================================================================== bitsandbytes
# bitsandbytes/functional.py: get_4bit_type (nf4 and fp4 branches; identical in 0.44.1 and main).
def get_4bit_type(typename):
    if typename == "nf4":
        data = [
            -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
            -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
            0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
            0.7229568362236023, 1.0,
        ]
    elif typename == "fp4":
        # 0b000 = 0, 0b001 = 0.0625, 0b010 = 8, 0b011 = 12, 0b100 = 4, 0b101 = 6, 0b110 = 2, 0b111 = 3
        data = [0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0, -0, -0.0625, -8.0, -12.0, -4.0, -6.0, -2.0, -3.0]
    else:
        raise ValueError(typename)
    data = torch.tensor(data)
    data.div_(data.abs().max())
    assert data.numel() == 16
    return data


# bitsandbytes/functional.py: create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) (main).
def create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8):
    data = []
    non_sign_bits = total_bits - 1
    additional_items = 2 ** (non_sign_bits - max_exponent_bits) - 1
    for i in range(max_exponent_bits):
        fraction_items = int(
            2 ** (i + non_sign_bits - max_exponent_bits) + 1
            if signed
            else 2 ** (i + non_sign_bits - max_exponent_bits + 1) + 1,
        )
        boundaries = torch.linspace(0.1, 1, fraction_items, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    if additional_items > 0:
        boundaries = torch.linspace(0.1, 1, additional_items + 1, dtype=torch.float32)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += ((10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
        if signed:
            data += (-(10 ** (-(max_exponent_bits - 1) + i)) * means).tolist()
    data.append(0)
    data.append(1.0)
    assert len(data) == 2**total_bits
    gap = 256 - len(data)
    for i in range(gap):
        data.append(0)
    data.sort()
    return torch.tensor(data, dtype=torch.float32)


# bitsandbytes/backends/default/ops.py: _get_4bit_quantize_bounds.
def get_4bit_quantize_bounds(quant_type):
    code = get_4bit_type(quant_type)
    order = torch.argsort(code)
    midpoints = (code[order[:-1]] + code[order[1:]]) / 2
    return midpoints, order


# bitsandbytes/backends/default/ops.py: "bitsandbytes::quantize_4bit" (quant_storage uint8).
def quantize_4bit_op(A, blocksize, quant_type):
    bounds, order = get_4bit_quantize_bounds(quant_type)
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] / am, -1, 1)])
    if scaled.numel() % 2:
        scaled = torch.nn.functional.pad(scaled, (0, 1))
    q = torch.bucketize(scaled, bounds, out_int32=True)
    if quant_type != "nf4":
        q = order[q.long()]  # .long(): torch 1.13 (the lab) cannot index with int32; same values
    q8 = q.to(torch.uint8)
    packed = ((q8[::2] << 4) | q8[1::2]).unsqueeze(1)
    return packed, absmax


# bitsandbytes/backends/default/ops.py: _dequantize_4bit_compute ("bitsandbytes::dequantize_4bit").
def dequantize_4bit_op(A, absmax, blocksize, quant_type, shape, dtype):
    A_flat = A.reshape(-1)
    code = get_4bit_type(quant_type)
    n = 1
    for s in shape:
        n *= s
    out_dq = torch.empty(A_flat.size(0) * 2, dtype=torch.int64)
    out_dq[1::2] = (A_flat & 0xF).long()
    out_dq[::2] = (A_flat >> 4).long()
    out_dq = code[out_dq][:n]
    rem = n % blocksize
    if rem:
        full = n - rem
        blocks = full // blocksize
        out = torch.empty(n, dtype=torch.float32)
        out[:full] = (out_dq[:full].view(-1, blocksize) * absmax[:blocks].view(-1, 1)).reshape(full)
        out[full:] = out_dq[full:] * absmax[blocks]
    else:
        out = (out_dq.view(-1, blocksize) * absmax.view(-1, 1)).reshape(n)
    return out.reshape(-1, *shape[1:]).to(dtype)


# bitsandbytes/backends/default/ops.py: "bitsandbytes::quantize_blockwise".
def quantize_blockwise_op(A, code, blocksize):
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    rem = n % blocksize
    full = n - rem
    blocks = full // blocksize
    A_com = A_flat[:full].reshape(blocks, blocksize)
    absmax = A_com.abs().max(dim=-1)[0]
    scaled = torch.clamp(A_com * (1.0 / absmax.clamp(min=1e-38).view(-1, 1)), -1, 1).reshape(-1)
    if rem:
        am = A_flat[full:].abs().max().clamp(min=1e-38)
        absmax = torch.cat([absmax, am.unsqueeze(0)])
        scaled = torch.cat([scaled, torch.clamp(A_flat[full:] / am, -1, 1)])
    bounds = (code[:-1] + code[1:]) / 2  # code is always sorted (same assumption as CUDA kernel)
    q = torch.bucketize(scaled, bounds, out_int32=True).to(torch.uint8)
    return q.reshape(A.shape), absmax


# bitsandbytes/backends/default/ops.py: _dequantize_blockwise_compute ("bitsandbytes::dequantize_blockwise").
def dequantize_blockwise_op(A_flat, absmax, code, blocksize, dtype):
    n = A_flat.numel()
    out = code[A_flat.to(torch.int64)]
    rem = n % blocksize
    if rem == 0:
        out = (out.reshape(-1, blocksize) * absmax.view(-1, 1)).reshape(n)
    else:
        full = n - rem
        blocks = full // blocksize
        out = torch.cat([
            (out[:full].reshape(blocks, blocksize) * absmax[:blocks].view(-1, 1)).reshape(full),
            out[full:] * absmax[blocks],
        ])
    return out.to(dtype)


# bitsandbytes/utils.py: pack_dict_to_tensor.
def pack_dict_to_tensor(source_dict):
    json_str = json.dumps(source_dict)
    json_bytes = json_str.encode("utf-8")
    return torch.tensor(list(json_bytes), dtype=torch.uint8)


# bitsandbytes/functional.py: quantize_4bit (blocksize 64; compress_statistics = double quantization), then
# QuantState.as_dict(packed=True): the tensors a Linear4bit adds to the state dict under "<name>.weight.".
def quantize_4bit(A, quant_type, compress_statistics, blocksize=64):
    packed, absmax = quantize_4bit_op(A, blocksize, quant_type)
    code = get_4bit_type(quant_type)
    state = {"quant_type": quant_type, "blocksize": blocksize, "quant_map": code,
             "dtype": str(A.dtype).strip("torch."), "shape": tuple(A.shape)}
    if compress_statistics:
        offset = absmax.mean()
        nested_code = create_dynamic_map()
        qabsmax, absmax2 = quantize_blockwise_op(absmax - offset, nested_code, 256)
        state.update({"absmax": qabsmax, "nested_absmax": absmax2, "nested_blocksize": 256,
                      "nested_quant_map": nested_code.clone(), "nested_dtype": "float32",
                      "nested_offset": offset.item(), "_offset_tensor": offset, "_absmax_fp32": absmax})
    else:
        state["absmax"] = absmax
    return packed, state


def as_dict_packed(state):
    """QuantState.as_dict(packed=True): tensors plus the JSON of the rest under quant_state.bitsandbytes__<type>."""
    qs = {"quant_type": state["quant_type"], "absmax": state["absmax"], "blocksize": state["blocksize"],
          "quant_map": state["quant_map"], "dtype": state["dtype"], "shape": state["shape"]}
    if "nested_absmax" in state:
        qs.update({"nested_absmax": state["nested_absmax"], "nested_blocksize": state["nested_blocksize"],
                   "nested_quant_map": state["nested_quant_map"], "nested_dtype": state["nested_dtype"],
                   "nested_offset": state["nested_offset"]})
    tensors = {k: v for k, v in qs.items() if isinstance(v, torch.Tensor)}
    rest = {k: v for k, v in qs.items() if not isinstance(v, torch.Tensor)}
    tensors["quant_state.bitsandbytes__" + state["quant_type"]] = pack_dict_to_tensor(rest)
    return tensors


# bitsandbytes/functional.py: dequantize_4bit (nested absmax first: dequantize_blockwise, then += offset).
def dequantize_4bit(packed, state, dtype=torch.float32):
    absmax = state["absmax"]
    if "nested_absmax" in state:
        absmax = dequantize_blockwise_op(absmax.reshape(-1), state["nested_absmax"], state["nested_quant_map"],
                                         state["nested_blocksize"], torch.float32)
        absmax += torch.tensor(float(state["nested_offset"]))
    return dequantize_4bit_op(packed, absmax, state["blocksize"], state["quant_type"], state["shape"], dtype), absmax


# bitsandbytes/backends/default/ops.py: "bitsandbytes::int8_vectorwise_quant" (threshold 0: no outliers),
# called by nn/modules.py Int8Params._quantize on the weight cast to float16.
def int8_params_quantize(W):
    A = W.contiguous().to(dtype=torch.float16)
    row_stats = torch.max(A.abs(), dim=1).values.float()
    out_row = torch.round(A * (127.0 / row_stats.unsqueeze(-1))).to(torch.int8)
    return A, out_row, row_stats


# bitsandbytes/_ops.py: "bitsandbytes::int8_vectorwise_dequant" (default kernel).
def int8_vectorwise_dequant(A, stats):
    return A * stats.view(-1, 1) * 7.874015718698502e-3


# csrc/kernels.cu (0.44.1 and main): dQuantizeNF4 / dQuantizeFP4, the CUDA decision trees (only to count
# where CUDA would write another code; see the module docstring). x is the float32 scaled value.
def cuda_quantize_nf4(x):
    # The tree's thresholds in increasing order (float32, strict '>'): the nibble is how many lie below x.
    th = torch.tensor([-0.8480964004993439, -0.6106329262256622, -0.4599952697753906, -0.33967943489551544,
                       -0.23460740596055984, -0.13791173323988914, -0.045525018125772476, 0.03979014977812767,
                       0.1202552504837513, 0.2035212516784668, 0.2920137718319893, 0.3893125355243683,
                       0.5016634166240692, 0.6427869200706482, 0.8614784181118011], dtype=torch.float32)
    nan = torch.isnan(x)
    q = (x.unsqueeze(-1) > th).sum(-1)
    q[nan] = 0
    return q.to(torch.uint8)


def cuda_quantize_fp4(x):
    sign = (x < 0).to(torch.uint8) * 8
    a = x.abs()
    # thresholds of dQuantizeFP4 in float32; codes for |x| in increasing order of the value they stand for
    th = torch.tensor([0.00260417, 0.0859375, 0.20833333, 0.29166667, 0.4166667, 0.583333, 0.8333333],
                      dtype=torch.float32)
    codes = torch.tensor([0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011], dtype=torch.uint8)
    idx = (a.unsqueeze(-1) > th).sum(-1)
    idx[torch.isnan(a)] = 0
    return codes[idx] + sign


def cuda_codes(A, blocksize, quant_type):
    """The nibbles kQuantizeBlockwise would write (x * (1/absmax), no clamp; NaN for an all-zero block)."""
    A_flat = A.reshape(-1).float()
    n = A_flat.numel()
    blocks = (n + blocksize - 1) // blocksize
    pad = blocks * blocksize - n
    Ap = torch.nn.functional.pad(A_flat, (0, pad)).reshape(blocks, blocksize)
    absmax = Ap.abs().max(dim=-1)[0]
    with torch.no_grad():
        scaled = (Ap * (1.0 / absmax).view(-1, 1)).reshape(-1)[:n]
    return cuda_quantize_nf4(scaled) if quant_type == "nf4" else cuda_quantize_fp4(scaled)


def unpack_nibbles(packed, n):
    p = packed.reshape(-1)
    out = torch.empty(p.numel() * 2, dtype=torch.uint8)
    out[::2] = p >> 4
    out[1::2] = p & 0xF
    return out[:n]


# ================================================================================================ helpers
def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": sys.version.split()[0],
        "bitsandbytes_algorithms": BNB_COMMIT,
        "safetensors": "pure-Python stand-in from the peft-lab shims (standard format)",
        "torch_threads": torch.get_num_threads(),
    }


def st_layout(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None)
    return {"metadata": meta, "tensors": {k: [v["dtype"], v["shape"]] for k, v in sorted(header.items())}}


def f32(values):
    return torch.tensor(values, dtype=torch.float32)


# ============================================================================================ codec cases
def code_table_cases(out):
    nf4, fp4 = get_4bit_type("nf4"), get_4bit_type("fp4")
    nf4_bounds, nf4_order = get_4bit_quantize_bounds("nf4")
    fp4_bounds, fp4_order = get_4bit_quantize_bounds("fp4")
    dyn = create_dynamic_map()
    save_file({
        "nf4_code": nf4, "fp4_code": fp4,
        "nf4_bounds": nf4_bounds.contiguous(), "fp4_bounds": fp4_bounds.contiguous(),
        "nf4_order": nf4_order.contiguous(), "fp4_order": fp4_order.contiguous(),
        "dynamic_map": dyn, "dynamic_bounds": ((dyn[:-1] + dyn[1:]) / 2).contiguous(),
    }, os.path.join(out, "tables.safetensors"))
    return {"file": "tables.safetensors",
            "holds": "nf4_code, fp4_code [16] (get_4bit_type); nf4_bounds, fp4_bounds [15] and nf4_order, fp4_order [16] "
                     "(default backend _get_4bit_quantize_bounds: midpoints of the sorted table, argsort order); "
                     "dynamic_map [256] (create_dynamic_map()), dynamic_bounds [255] (quantize_blockwise's midpoints)"}


def hand_block(quant_type):
    """64 values with absmax 2 (scaled = x / 2): every code exactly, every midpoint (a tie), and just above."""
    code = get_4bit_type(quant_type)
    bounds, _ = get_4bit_quantize_bounds(quant_type)
    vals = [2.0 * v for v in code.tolist()]                      # 16: the codes themselves (absmax 2 is one of them)
    vals += [2.0 * b for b in bounds.tolist()]                   # 15: exact midpoints (x / 2 == bound: ties)
    vals += [torch.nextafter(torch.tensor(2.0 * b), torch.tensor(9.0)).item() for b in bounds.tolist()]  # 15: above
    vals += [0.0, -0.0, 1e-6, -1e-6, 0.004, -0.004, 0.006, -0.006, 1.999, -1.999, 0.3, -0.3, 0.77, -0.77,
             0.123, -0.456, 0.9, -0.05]                          # 18
    assert len(vals) == 64, len(vals)
    return f32(vals)


def codec_4bit_case(out, name, x, quant_type, nested, why, shape=None):
    x = x.float().contiguous()
    if shape is not None:
        x = x.reshape(shape)
    packed, state = quantize_4bit(x, quant_type, nested)
    deq, absmax_used = dequantize_4bit(packed, state)
    tensors = {"input": x, "packed": packed.contiguous(), "dequantized": deq.contiguous(),
               "absmax_dequantized": absmax_used.contiguous().float()}
    tensors.update({k: v.contiguous() for k, v in as_dict_packed(state).items()})
    if nested:
        tensors["absmax_fp32"] = state["_absmax_fp32"].contiguous()
        tensors["offset"] = state["_offset_tensor"].reshape(1).contiguous()
    save_file({k: v.clone() for k, v in tensors.items()}, os.path.join(out, name + ".safetensors"))
    n = x.numel()
    ours = unpack_nibbles(packed, n)
    cuda = cuda_codes(x, 64, quant_type)
    code = get_4bit_type(quant_type)
    scale = x.reshape(-1).abs()
    scale = torch.nn.functional.pad(scale, (0, (-n) % 64)).reshape(-1, 64).max(dim=-1)[0].repeat_interleave(64)[:n]
    value_diff = int((code[ours.long()] * scale != code[cuda.long()] * scale).sum())
    return {"file": name + ".safetensors", "quant_type": quant_type, "double_quant": nested,
            "shape": list(x.shape), "why": why,
            "quant_state_json": bytes(as_dict_packed(state)["quant_state.bitsandbytes__" + quant_type].tolist()).decode(),
            "cuda_differences": {"nibbles": int((ours != cuda).sum()), "decoded_values": value_diff,
                                 "note": "codes CUDA kQuantizeBlockwise would write instead (float32 absmax, no nesting)"}}


def codec_int8_case(out, name, w, why):
    w = w.float().contiguous()
    a16, cb, scb = int8_params_quantize(w)
    deq = int8_vectorwise_dequant(cb, scb)
    save_file({"input": w, "input_f16": a16.contiguous(), "CB": cb.contiguous(), "SCB": scb.contiguous(),
               "dequantized": deq.contiguous(), "weight_format": torch.tensor(0, dtype=torch.uint8)},
              os.path.join(out, name + ".safetensors"))
    return {"file": name + ".safetensors", "shape": list(w.shape), "why": why}


def make_codec(out_root):
    out = os.path.join(out_root, "codec")
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    gen = torch.Generator().manual_seed(7)
    cases = {"tables": code_table_cases(out)}
    hand_why = ("64 hand-chosen values, absmax 2: every code value, every midpoint between neighbouring codes "
                "(ties), the next float above each midpoint, signed zeros, tiny values around FP4's zero codes")
    cases["nf4_hand"] = codec_4bit_case(out, "nf4_hand", hand_block("nf4"), "nf4", False, hand_why)
    cases["fp4_hand"] = codec_4bit_case(out, "fp4_hand", hand_block("fp4"), "fp4", False, hand_why)
    # Several blocks, one all zero, one with a negative absmax value, then a tail of 10 values and an odd count.
    multi = torch.cat([torch.randn(64, generator=gen), torch.zeros(64), -5 + torch.rand(64, generator=gen),
                       torch.randn(10, generator=gen) * 3, torch.tensor([0.25])])
    multi_why = ("3 full blocks (random; all zero; values in [-5,-4]) and a tail of 11 values (n = 203, odd: the "
                 "last byte's low nibble is the code of the zero padding)")
    cases["nf4_blocks_tail"] = codec_4bit_case(out, "nf4_blocks_tail", multi, "nf4", False, multi_why)
    cases["fp4_blocks_tail"] = codec_4bit_case(out, "fp4_blocks_tail", multi, "fp4", False, multi_why)
    # Double quantization: 320 blocks = one full nested block of 256 and a nested tail of 64; a few rows scaled.
    w = torch.randn(160, 128, generator=gen) * 0.02
    w[3] *= 40.0
    w[77, 5] = 0.9
    dq_why = ("[160, 128] normal(0, 0.02) with row 3 x40 and one outlier: 320 absmax values, double-quantized "
              "in one block of 256 and a tail of 64 (offset = their float32 mean)")
    cases["nf4_double_quant"] = codec_4bit_case(out, "nf4_double_quant", w, "nf4", True, dq_why)
    cases["fp4_double_quant"] = codec_4bit_case(out, "fp4_double_quant", w, "fp4", True, dq_why)
    cases["nf4_plain_matrix"] = codec_4bit_case(out, "nf4_plain_matrix", w, "nf4", False, "the same matrix, no double quantization")
    small = torch.randn(7, 9, generator=gen)
    cases["nf4_double_quant_small"] = codec_4bit_case(
        out, "nf4_double_quant_small", small, "nf4", True,
        "[7, 9] = 63 values: one partial 4-bit block, one nested block of a single absmax (offset = absmax, so the "
        "nested input is 0 and its nested absmax is clamped to 1e-38)")
    # 8-bit
    rows = torch.tensor([
        [127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 63.5],      # scale 1: round half to even
        [0.0] * 8,                                             # an all-zero row
        [1e-3, -2e-3, 3e-3, 1.0001, -0.33333, 0.1, 0.2, 0.3],  # fp16 rounding before the scale
        [-7.0, 3.0, 3.5, -3.5, 0.0, 1e-5, 6.99, -6.99],
    ])
    cases["int8_hand"] = codec_int8_case(out, "int8_hand", rows, "ties at .5 (torch.round: half to even), a zero row, "
                                                               "values changed by the float16 cast")
    cases["int8_random"] = codec_int8_case(out, "int8_random", torch.randn(24, 40, generator=gen) * 0.05,
                                           "[24, 40] normal(0, 0.05)")
    # torch's float32 sum (absmax.mean() = sum / n) on one thread, for sizes that take each of its paths.
    sums = {}
    for n in (3, 7, 8, 33, 100, 1000, 40000):
        x = torch.rand(n, generator=gen) * 0.05 + 0.001
        sums[f"x_{n}"] = x
        sums[f"sum_{n}"] = x.sum().reshape(1)
        sums[f"mean_{n}"] = x.mean().reshape(1)
    save_file(sums, os.path.join(out, "torch_sums.safetensors"))
    cases["torch_sums"] = {"file": "torch_sums.safetensors",
                           "why": "x_<n> uniform in [0.001, 0.051), sum_<n> = x.sum(), mean_<n> = x.mean() (float32, "
                                  "one thread): the order torch adds in, which the double-quantization offset needs"}
    meta = {"versions": versions(), "generator": "tools/bnb-reference/make_cases.py",
            "notes": ["4-bit files hold the tensors QuantState.as_dict(packed=True) gives (absmax, quant_map, "
                      "nested_absmax, nested_quant_map, quant_state.bitsandbytes__<type>) under their short names, "
                      "plus input, packed, dequantized, absmax_dequantized (the float32 absmax dequantize_4bit uses) "
                      "and, with double quantization, absmax_fp32 (before the offset) and offset [1].",
                      "packed is [ceil(n/2), 1] uint8, first value in the high nibble.",
                      "8-bit files: input, input_f16 (Int8Params casts to float16 first), CB int8, SCB float32, "
                      "dequantized float32 (int8_vectorwise_dequant), weight_format (uint8 scalar 0 = row)."],
            "cases": cases}
    with open(os.path.join(out, "cases.json"), "w") as fh:
        json.dump(meta, fh, indent=2)


# ============================================================================================ model cases
LLAMA_KW = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                initializer_range=0.2, tie_word_embeddings=False)
GPT2_KW = dict(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32, n_inner=64, initializer_range=0.2)


def bnb_config(**kw):
    """transformers' BitsAndBytesConfig(...).to_dict(); its post_init asks for bitsandbytes' version."""
    real = importlib.metadata.version

    def version(name):
        return "0.44.1" if name == "bitsandbytes" else real(name)
    importlib.metadata.version = version
    try:
        from transformers import BitsAndBytesConfig
        return BitsAndBytesConfig(**kw)
    finally:
        importlib.metadata.version = real


def modules_to_quantize(model, skip):
    """integrations/bitsandbytes.py _replace_with_bnb_linear's choice: Linear / Conv1D modules not skipped."""
    chosen = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, (torch.nn.Linear, Conv1D)):
            continue
        child = name.split(".")[-1]
        if child in skip or any((key + "." in name) or (key == name) for key in skip):
            continue
        chosen.append(name)
    return chosen


def make_model_case(out_root, name, kind, model_cls, cfg_cls, kw, qkw, notes):
    out = os.path.join(out_root, "models", name)
    if os.path.isdir(out):
        shutil.rmtree(out)
    os.makedirs(out)
    torch.manual_seed(0)
    config = cfg_cls(**kw, attn_implementation="eager")
    model = model_cls(config).eval()
    model.save_pretrained(os.path.join(out, "base"), safe_serialization=True)

    from transformers.integrations.bitsandbytes import get_keys_to_not_convert
    skip = qkw.get("llm_int8_skip_modules") or get_keys_to_not_convert(model)
    targets = modules_to_quantize(model, skip)

    qconfig = bnb_config(**qkw)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    dequantized = dict(state)
    for t in targets:
        module = model.get_submodule(t)
        w = module.weight.detach()
        if isinstance(module, Conv1D):
            w = w.T  # transformers quantizes Conv1D weights transposed: [out, in], as a Linear
        w = w.contiguous()
        key = t + ".weight"
        del state[key]
        if kind == "4bit":
            packed, st = quantize_4bit(w, qconfig.bnb_4bit_quant_type, qconfig.bnb_4bit_use_double_quant)
            state[key] = packed.contiguous()
            for k, v in as_dict_packed(st).items():
                state[key + "." + k] = v.contiguous()
            deq, _ = dequantize_4bit(packed, st)
        else:
            _, cb, scb = int8_params_quantize(w)
            state[key] = cb.contiguous()
            state[t + ".SCB"] = scb.contiguous()
            state[t + ".weight_format"] = torch.tensor(0, dtype=torch.uint8)
            deq = int8_vectorwise_dequant(cb, scb)
        dequantized[key] = deq.T.contiguous() if isinstance(module, Conv1D) else deq
    # transformers' save_pretrained drops a tied head's weight (the embedding holds it).
    for tied in [k for k in state if k == "lm_head.weight" and getattr(config, "tie_word_embeddings", False)]:
        del state[tied]

    qdir = os.path.join(out, "quantized")
    os.makedirs(qdir)
    save_file(state, os.path.join(qdir, "model.safetensors"), metadata={"format": "pt"})
    config.quantization_config = qconfig
    config.save_pretrained(qdir)

    ids = torch.randint(0, kw["vocab_size"], (2, 6), generator=torch.Generator().manual_seed(1))
    inputs = {"input_ids": ids.tolist()}
    with open(os.path.join(out, "inputs.json"), "w") as fh:
        json.dump(inputs, fh)
    with torch.no_grad():
        base_logits = model(input_ids=ids).logits
        model.load_state_dict(dequantized)
        q_logits = model(input_ids=ids).logits
    save_file({"logits": base_logits.contiguous()}, os.path.join(out, "logits_base.safetensors"))
    save_file({"logits": q_logits.contiguous()}, os.path.join(out, "logits_quantized.safetensors"))

    meta = {"case": name, "versions": versions(), "generator": "tools/bnb-reference/make_cases.py",
            "model_class": model_cls.__name__, "config_kwargs": kw, "seed": "torch.manual_seed(0) before the model",
            "bits_and_bytes_config_kwargs": qkw, "quantization_config": qconfig.to_dict(),
            "modules_not_converted": skip, "quantized_modules": targets,
            "quantized_layout": st_layout(os.path.join(qdir, "model.safetensors")),
            "max_abs_logits_diff_quantized_vs_base": float((q_logits - base_logits).abs().max()),
            "files": {"base/": "transformers save_pretrained, float32",
                      "quantized/": "config.json (quantization_config = BitsAndBytesConfig.to_dict()) and "
                                    "model.safetensors in the layout Linear4bit / Linear8bitLt _save_to_state_dict give",
                      "logits_base.safetensors": "logits of base/",
                      "logits_quantized.safetensors": "logits with each quantized weight replaced by its dequantized "
                                                      "float32 value"},
            "notes": notes}
    with open(os.path.join(out, "meta.json"), "w") as fh:
        json.dump(meta, fh, indent=2)


def make_models(out_root):
    make_model_case(out_root, "llama_nf4_double_quant", "4bit", LlamaForCausalLM, LlamaConfig, LLAMA_KW,
                    dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
                    ["the default llm_int8_skip_modules (None): get_keys_to_not_convert keeps lm_head"])
    make_model_case(out_root, "llama_fp4", "4bit", LlamaForCausalLM, LlamaConfig, LLAMA_KW,
                    dict(load_in_4bit=True, bnb_4bit_quant_type="fp4", bnb_4bit_use_double_quant=False,
                         bnb_4bit_compute_dtype="float32"), [])
    make_model_case(out_root, "llama_int8", "8bit", LlamaForCausalLM, LlamaConfig, LLAMA_KW,
                    dict(load_in_8bit=True),
                    ["logits_quantized is the weight-only dequantized forward (CB * SCB / 127), not LLM.int8's "
                     "int8 matmul with outlier decomposition (llm_int8_threshold 6.0 is in the config)"])
    make_model_case(out_root, "gpt2_nf4_double_quant", "4bit", GPT2LMHeadModel, GPT2Config, GPT2_KW,
                    dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True),
                    ["GPT-2's Conv1D weights [in, out] are quantized transposed, as [out, in] (transformers' "
                     "create_quantized_param); the tied lm_head is skipped and saved once, as transformer.wte.weight"])
    make_model_case(out_root, "llama_nf4_skip_mlp", "4bit", LlamaForCausalLM, LlamaConfig, LLAMA_KW,
                    dict(load_in_4bit=True, bnb_4bit_quant_type="nf4", llm_int8_skip_modules=["mlp", "lm_head"]),
                    ["llm_int8_skip_modules ['mlp', 'lm_head']: every module under an 'mlp' stays full precision"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    make_codec(args.out)
    make_models(args.out)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
