"""Reference cases for more PEFT methods, for PeftMixedModel and for training, made by the real PEFT 0.13.2.

A sibling of make_cases.py (same lab, same seeds, same perturbation idea, same meta.json layout; its helpers are
imported from there). It writes into tests/fixtures/peft/:

    bases/<kind>/              one transformers save_pretrained folder per tiny base model, shared by every case
                               of this script (the models are identical to make_cases.py's per-case base/ folders:
                               same config, same seed); kinds: llama, llama_bias, gpt2, bert
    <method>_<model>[_opts]/   logits cases: LoHa, LoKr, OFT, VeRA, LN tuning, BOFT, FourierFT (adapter/, inputs.json,
                               logits_base/adapter/merged.safetensors, meta.json), as make_cases.py's cases
    mixed_<a>_<b>_<where>/     PeftMixedModel: two adapters of different types, each made and saved alone
                               (adapter_one/, adapter_two/), loaded together; logits of each alone, both, merged
    train_<method>_llama/      a few AdamW steps: initial_adapter/, data.json, losses.json, final_adapter/,
                               logits_final.safetensors
    train_mixed_lora_loha/     the same for a LoRA (attention) + LoHa (FFN) PeftMixedModel, each adapter saved alone

How to run (the lab: /work/lab/LAB.md, /work/shared/tools/peft-lab/README.md)
    source /work/lab/env.sh
    /usr/bin/python3 tools/peft-reference/make_method_cases.py [--out tests/fixtures/peft] [case ...]
    Deterministic: re-running rewrites identical files.

Perturbation: as make_cases.py (PERTURB_RULE below); PEFT starts these adapters as no-ops (hada_w2_b, lokr_w1 /
lokr_w1_a, oft_r, vera_lambda_b, boft_R are zeros; LN-tuning copies and boft_s are ones), so zero tensors get
randn*0.1 and all-ones tensors 1 + randn*0.1 right after get_peft_model; FourierFT's default init is already
random. Every meta.json lists what was touched.

BOFT and its CUDA extension: PEFT 0.13.2's BOFT layer tries to compile a CUDA extension (fbd_cuda) in every
update_layer; when that fails (any machine without CUDA) it silently sets boft_n_butterfly_factor to 1. This script
never compiles anything: peft.tuners.boft.layer.get_fbd_cuda is replaced by `lambda: None` (PEFT's own CPU path), and
for the cases that need butterfly factors > 1 by CpuFastBlockDiag, a plain-torch equivalent of the extension's
kernels (block-diagonal of [N, D, b, b] -> [N, D*b, D*b], and its transpose for the gradient), so that PEFT runs the
code path it runs on a CUDA machine. Each BOFT meta.json says which.

This is our own code (not part of PEFT). Nothing in the build or CI runs it.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import traceback
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_cases as mc  # noqa: E402  (helpers shared with the first generator)
from make_cases import (BERT_KW, GPT2_KW, LLAMA_KW, SEED_BASE, SEED_INPUTS, SEED_PEFT, SEED_PERTURB,  # noqa: E402
                        config_passed, forward_logits, jsonable, lm_inputs, randint_ids, st_layout)

import peft  # noqa: E402
import peft.tuners.boft.layer as boft_layer  # noqa: E402
from peft import (BOFTConfig, FourierFTConfig, IA3Config, LNTuningConfig, LoHaConfig, LoKrConfig,  # noqa: E402
                  LoraConfig, OFTConfig, PeftMixedModel, PeftModel, TaskType, VeraConfig, get_peft_model)
from peft.tuners.tuners_utils import BaseTunerLayer  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel,  # noqa: E402
                          LlamaConfig, LlamaForCausalLM)

DEFAULT_OUT = mc.DEFAULT_OUT
GENERATOR = "tools/peft-reference/make_method_cases.py"
SEED_DATA = 3          # torch.Generator seed for the training rows

BASES = {
    "llama": (LlamaForCausalLM, LlamaConfig, LLAMA_KW),
    "llama_bias": (LlamaForCausalLM, LlamaConfig, dict(LLAMA_KW, attention_bias=True, mlp_bias=True)),
    "gpt2": (GPT2LMHeadModel, GPT2Config, GPT2_KW),
    "bert": (BertForSequenceClassification, BertConfig, BERT_KW),
}
BASE_NOTES = {
    "llama": "LlamaForCausalLM, no biases (make_cases.py's Llama)",
    "llama_bias": "LlamaForCausalLM with attention_bias=True, mlp_bias=True (biases on q/k/v/o and gate/up/down)",
    "gpt2": "GPT2LMHeadModel (transformers Conv1D: weight [in, out])",
    "bert": "BertForSequenceClassification, 2 labels",
}

# parameter-name markers of the adapters this script perturbs (LoRA for the mixed cases)
ADAPTER_MARKERS = ("hada_", "lokr_", "oft_r", "vera_lambda_", "ln_tuning_layers", "boft_", "fourierft_", "lora_")
PERTURB_RULE = ("after get_peft_model: every adapter parameter (name containing one of "
                f"{list(ADAPTER_MARKERS)}) whose value is all zeros := randn(shape)*0.1, all ones := 1 + "
                "randn(shape)*0.1, anything else unchanged; randn from torch.Generator().manual_seed(101), parameters "
                "in named_parameters() order (only those listed in perturbed_parameters)")

BERT_INPUTS = None  # filled in lazily (same rows as make_cases.py's BERT case)


def bert_inputs():
    ids = randint_ids(2, 7)
    return {"input_ids": ids.tolist(), "attention_mask": [[1] * 7, [1] * 5 + [0] * 2],
            "token_type_ids": [[0] * 4 + [1] * 3, [0] * 3 + [1] * 4]}


# ----------------------------------------------------------------------------------------------- BOFT's extension
class CpuFastBlockDiag:
    """Plain-torch stand-in for PEFT's fbd_cuda extension (peft/tuners/boft/fbd/fbd_cuda_kernel.cu).

    forward: input [N, D, b, b] -> [N, D*b, D*b] with block d of batch n on the diagonal (the kernel's
    output[n, d*b + x, d*b + y] = input[n, d, x, y]); backward: the same indices read back from the gradient.
    """

    @staticmethod
    def forward(x):
        return [torch.stack([torch.block_diag(*xn.unbind(0)) for xn in x])]

    @staticmethod
    def backward(grad, x):
        n, d, b, _ = x.shape
        return [torch.stack([torch.stack([grad[i, j * b:(j + 1) * b, j * b:(j + 1) * b] for j in range(d)])
                             for i in range(n)])]


FBD_ABSENT = "absent: get_fbd_cuda() returns None (PEFT's CPU path; boft_n_butterfly_factor is forced to 1)"
FBD_STANDIN = ("CPU stand-in: get_fbd_cuda() returns CpuFastBlockDiag (plain-torch block diagonal), so PEFT takes its "
               "CUDA-machine path (fbd_cuda_available=True, the configured boft_n_butterfly_factor is kept)")
boft_layer.get_fbd_cuda = lambda: None   # never compile: see the module docstring


@contextlib.contextmanager
def fbd(mode):
    boft_layer.get_fbd_cuda = (lambda: CpuFastBlockDiag) if mode == "standin" else (lambda: None)
    try:
        yield
    finally:
        boft_layer.get_fbd_cuda = lambda: None


# ----------------------------------------------------------------------------------------------- helpers
def perturb(model, gen, record):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if not any(s in n for s in ADAPTER_MARKERS):
                continue
            if torch.all(p == 0):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "0 -> randn*0.1"})
            elif torch.all(p == 1):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "1 -> 1 + randn*0.1"})


def perturb_modules_to_save(model, gen, record):
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ".modules_to_save." in n:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "w + randn*0.1 (modules_to_save copy)"})


def max_diff(a, b):
    return (a - b).abs().max().item()


def trainable(pm):
    t, a = pm.get_nb_trainable_parameters()
    return {"trainable": t, "all": a, "how": "PeftModel.get_nb_trainable_parameters()"}


WRITTEN_BASES = set()


class MCase(mc.Case):
    """A make_cases.Case whose base model lives in the shared bases/<kind>/ folder."""

    def __init__(self, out_root, name, kind):
        super().__init__(out_root, name, BASES[kind][0].__name__)
        self.out_root, self.kind = out_root, kind
        self.meta["generator"] = GENERATOR
        self.base_dir = os.path.join(out_root, "bases", kind)
        self.base_cls = BASES[kind][0]

    def new_base(self):
        cls, ccls, kw = BASES[self.kind]
        torch.manual_seed(SEED_BASE)
        model = cls(ccls(**kw, attn_implementation="eager")).eval()
        model.name_or_path = model.config._name_or_path = f"../bases/{self.kind}"
        return model

    def build_base(self):
        model = self.new_base()
        if self.kind not in WRITTEN_BASES:
            if os.path.isdir(self.base_dir):
                shutil.rmtree(self.base_dir)
            model.save_pretrained(self.base_dir, safe_serialization=True)
            WRITTEN_BASES.add(self.kind)
        cls, _, kw = BASES[self.kind]
        self.meta["base"] = {"folder": f"../bases/{self.kind}", "what": BASE_NOTES[self.kind], "config_kwargs": kw,
                             "attn_implementation": "eager",
                             "seed": f"torch.manual_seed({SEED_BASE}) immediately before {cls.__name__}(config)",
                             "base_model_name_or_path": f"../bases/{self.kind} (relative to the case folder)"}
        self.meta["files"][f"../bases/{self.kind}/"] = ("shared transformers save_pretrained folder of the base model "
                                                        "(config.json, model.safetensors[, generation_config.json])")
        return model

    def load_base(self):
        return self.base_cls.from_pretrained(self.base_dir, attn_implementation="eager").eval()

    def save_adapter(self, model, folder="adapter", **kw):
        cwd = os.getcwd()
        os.chdir(self.dir)   # so PEFT finds ../bases/<kind>/config.json for its vocab-resize check
        try:
            model.save_pretrained(folder, **kw)
        finally:
            os.chdir(cwd)
        root_dir = self.path(folder)
        for root, _, files in os.walk(root_dir):   # PEFT's model card: boilerplate, not kept (size)
            if "README.md" in files:
                os.remove(os.path.join(root, "README.md"))
        lay, cfgs = {}, {}
        for root, _, files in os.walk(root_dir):
            rel = os.path.relpath(root, root_dir)
            for f in sorted(files):
                relf = f if rel == "." else f"{rel}/{f}"
                if f.endswith(".safetensors"):
                    lay[relf] = st_layout(os.path.join(root, f))
                if f == "adapter_config.json":
                    cfgs[relf] = json.load(open(os.path.join(root, f)))
        self.meta.setdefault("adapter_safetensors_layout", {})[folder] = lay
        self.meta.setdefault("adapter_config_saved", {})[folder] = cfgs
        self.meta["files"][f"{folder}/"] = ("PEFT save_pretrained output: adapter_config.json, adapter_model.safetensors "
                                           "(adapter name stripped from keys); PEFT's README.md model card removed")

    def reload(self, folder="adapter", is_trainable=False):
        base = self.load_base()
        return PeftModel.from_pretrained(base, self.path(folder), is_trainable=is_trainable).eval()

    def reload_check(self, ref, folder="adapter", label="default"):
        m = self.reload(folder)
        d = max_diff(forward_logits(m, self.inputs), ref)
        self.meta.setdefault("reload_max_abs_diff", {})[label] = d
        return m

    def finish(self):
        with open(self.path("meta.json"), "w") as fh:
            json.dump(jsonable(self.meta), fh, indent=2)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(self.dir) for f in fs)
        self.meta["size"] = size
        print(f"[{self.name}] ok, {size / 1024:.1f} KiB, effect {self.meta.get('adapter_effect_max_abs')}, "
              f"reload {self.meta.get('reload_max_abs_diff')}, merged {self.meta.get('merged_vs_unmerged_max_abs_diff')}")


def seeds_meta(c, extra=None):
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS, "get_peft_model": SEED_PEFT,
                       "perturbation": SEED_PERTURB, **(extra or {})}


def inputs_for(kind):
    return bert_inputs() if kind == "bert" else lm_inputs()


def standard_case(out, name, kind, cfg, *, merge=True, notes=(), extra_perturb=None, fbd_mode=None):
    """Base + one adapter: logits_base, logits_adapter, logits_merged; unmerge and disable checks."""
    c = MCase(out, name, kind)
    base = c.build_base()
    c.write_inputs(inputs_for(kind), "second row padded; token_type_ids mixed 0/1" if kind == "bert" else None)
    lb = c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    c.meta["peft_config_passed"] = config_passed(cfg)
    c.meta["peft_config_class"] = type(cfg).__name__
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg)
    rec = []
    gen = torch.Generator().manual_seed(SEED_PERTURB)
    perturb(pm, gen, rec)
    if extra_perturb:
        extra_perturb(pm, gen, rec)
    seeds_meta(c)
    c.meta["perturbation"] = PERTURB_RULE
    c.meta["perturbed_parameters"] = rec
    c.meta["trainable_parameters"] = trainable(pm)
    c.meta["peft_config_after_get_peft_model"] = jsonable(pm.peft_config["default"].to_dict())
    if fbd_mode:
        c.meta["boft_fbd_cuda"] = fbd_mode
    pm.eval()
    c.save_adapter(pm)
    ref = c.logits("logits_adapter.safetensors", forward_logits(pm, c.inputs),
                   "PeftModel forward, adapter active, eval, unmerged")
    c.meta["adapter_effect_max_abs"] = max_diff(ref, lb)
    c.reload_check(ref)
    with pm.disable_adapter():
        c.meta["disabled_vs_base_max_abs_diff"] = max_diff(forward_logits(pm, c.inputs), lb)
    if merge:
        pm.merge_adapter()
        merged_in_place = forward_logits(pm, c.inputs)
        pm.unmerge_adapter()
        c.meta["unmerge_vs_unmerged_max_abs_diff"] = max_diff(forward_logits(pm, c.inputs), ref)
        c.meta["merge_adapter_vs_unmerged_max_abs_diff"] = max_diff(merged_in_place, ref)
        merged = pm.merge_and_unload()
        ml = c.logits("logits_merged.safetensors", forward_logits(merged, c.inputs),
                      "after merge_and_unload(), plain transformers model, eval")
        c.meta["merged_vs_unmerged_max_abs_diff"] = max_diff(ml, ref)
    c.meta["notes"].extend(notes)
    return c, pm


CASES = {}


def case(fn):
    CASES[fn.__name__[5:]] = fn
    return fn


LLAMA_ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"]
LLAMA_ALL = LLAMA_ATTN + ["gate_proj", "up_proj", "down_proj"]
SHAPES_NOTE = ("tiny Llama Linear shapes [out, in]: q_proj/o_proj [32, 32], k_proj/v_proj [16, 32] (GQA, 2 KV heads), "
               "gate_proj/up_proj [48, 32], down_proj [32, 48]")


# ----------------------------------------------------------------------------------------------- LoHa
@case
def case_loha_llama(out):
    cfg = LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8, rank_dropout=0.1, module_dropout=0.1,
                     target_modules=LLAMA_ATTN)
    c, _ = standard_case(out, "loha_llama", "llama", cfg, notes=[
        SHAPES_NOTE,
        "LoHa Linear: hada_w1_a [out, r], hada_w1_b [r, in], hada_w2_a [out, r], hada_w2_b [r, in]; "
        "delta W = (w1_a @ w1_b) * (w2_a @ w2_b) * alpha/r (Hadamard product), here scaling 8/4 = 2; y = base(x) + x @ dW.T",
        "init_weights=True: w1_a, w1_b, w2_a kaiming_uniform(a=sqrt(5)), w2_b zeros (perturbed here)",
        "rank_dropout=0.1 and module_dropout=0.1 act only in training mode: these eval logits do not depend on them",
        "saved keys end in hada_w1_a etc. (plain parameters, no '.weight')"])
    c.finish()


@case
def case_loha_llama_patterns(out):
    cfg = LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=4, target_modules=["q_proj", "v_proj", "down_proj"],
                     rank_pattern={"v_proj": 2}, alpha_pattern={"down_proj": 16})
    c, _ = standard_case(out, "loha_llama_patterns", "llama", cfg, notes=[
        SHAPES_NOTE,
        "rank_pattern/alpha_pattern keys are regex, matched with re.match(rf'(.*\\.)?{key}$', module name) "
        "(LoHaModel._create_and_replace): v_proj gets r=2 (scaling 4/2 = 2), down_proj alpha 16 (scaling 16/4 = 4), "
        "q_proj r=4 alpha=4 (scaling 1)"])
    c.finish()


# ----------------------------------------------------------------------------------------------- LoKr
LOKR_ALPHA_NOTE = ("PEFT 0.13.2 LoKr IGNORES alpha: update_layer stores scaling = alpha/r but get_delta_weight computes "
                   "make_kron(w1, w2) with the default scale 1.0, so delta W = kron(w1, w2) whatever alpha is (fixed "
                   "in PEFT 0.14.0, #2180 'FIX Several bugs in LoKr', which passes self.scaling; 0.14+ configs also "
                   "carry rank_dropout_scale). A 0.13.2-compatible implementation must not scale.")


@case
def case_lokr_llama(out):
    cfg = LoKrConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=16, rank_dropout=0.1, module_dropout=0.1,
                     target_modules=LLAMA_ATTN + ["down_proj"])
    c, _ = standard_case(out, "lokr_llama", "llama", cfg, notes=[
        SHAPES_NOTE,
        "LoKr Linear: factorization(out) = (out_l, out_k), factorization(in) = (in_m, in_n) with "
        "decompose_factor=-1 (factors near the square root, smaller first): 32 -> (4, 8), 16 -> (4, 4), 48 -> (6, 8); "
        "w1 has shape [out_l, in_m], w2 [out_k, in_n]; delta W = kron(w1, w2) reshaped to [out, in]",
        "w1 is a full matrix (lokr_w1) unless decompose_both and r < max(out_l, in_m)/2; w2 is full (lokr_w2) unless "
        "r < max(out_k, in_n)/2, then lokr_w2_a [out_k, r] @ lokr_w2_b [r, in_n]; here r=4: q/o_proj w1 [4,4] "
        "w2 [8,8] full; k/v_proj w1 [4,4] w2 [4,8] full; down_proj w1 [4,6], w2 [8,8] full",
        "init_weights=True: lokr_w1 (or lokr_w1_a) zeros (perturbed here), the others kaiming_uniform(a=sqrt(5))",
        LOKR_ALPHA_NOTE + " Here alpha=16, r=4: the logits are those of scale 1, not 4.",
        "rank_dropout / module_dropout act only in training mode"])
    c.finish()


@case
def case_lokr_llama_decompose(out):
    cfg = LoKrConfig(task_type=TaskType.CAUSAL_LM, r=2, alpha=2, decompose_both=True, decompose_factor=4,
                     target_modules=["q_proj", "v_proj", "gate_proj", "down_proj"], rank_pattern={"q_proj": 1},
                     alpha_pattern={"v_proj": 16})
    c, _ = standard_case(out, "lokr_llama_decompose", "llama", cfg, notes=[
        SHAPES_NOTE,
        "decompose_factor=4: factorization(d, 4) = (4, d/4) when 4 divides d: 32 -> (4, 8), 16 -> (4, 4), "
        "48 -> (4, 12)",
        "decompose_both=True with r=2: w1 [4, 4] stays full (r < max(4,4)/2 = 2 is false) except for q_proj; w2 is "
        "decomposed where "
        "r < max(out_k, in_n)/2: q_proj uses rank_pattern r=1 -> lokr_w1_a [4,1] @ lokr_w1_b [1,4] and "
        "lokr_w2_a [8,1] @ lokr_w2_b [1,8]; v_proj ([16, 32]: w1 [4,4], w2 [4,8]) w2_a [4,2] w2_b [2,8] (2 < 8/2); "
        "gate_proj w2_a [12,2] w2_b [2,8]; down_proj w2_a [8,2] w2_b [2,12]",
        "init_weights=True: lokr_w1_a zeros for q_proj (perturbed), lokr_w1 zeros elsewhere (perturbed)",
        LOKR_ALPHA_NOTE + " alpha_pattern {v_proj: 16} therefore changes nothing either."])
    c.finish()


# ----------------------------------------------------------------------------------------------- OFT
OFT_FORMULA = ("OFT 0.13.2 rotates the OUTPUT of the layer: R = block_diag of r Cayley blocks Q_i = (I - S_i) @ "
               "inverse(I + S_i) with S_i = (oft_r[i] - oft_r[i].T)/2, each block ceil(out/r) square, cropped to "
               "[out, out]; y = ((base(x) - b) @ R) + b (the base bias is taken out before the rotation and put back "
               "after); merge: W' = (W.T @ R).T = R.T @ W; unmerge multiplies by inverse(R)")


@case
def case_oft_llama(out):
    cfg = OFTConfig(task_type=TaskType.CAUSAL_LM, r=4, module_dropout=0.1, target_modules=LLAMA_ATTN)
    c, _ = standard_case(out, "oft_llama", "llama", cfg, notes=[
        SHAPES_NOTE,
        "r = NUMBER OF BLOCKS (0.13.2 design): oft_r [r, ceil(out/r), ceil(out/r)]: q/o_proj [4, 8, 8], "
        "k/v_proj [4, 4, 4]",
        OFT_FORMULA,
        "init_weights=True: oft_r zeros (R = I; perturbed here)",
        "module_dropout=0.1 acts only in training mode (skips the whole adapter with that probability)"])
    c.finish()


@case
def case_oft_llama_block_share(out):
    cfg = OFTConfig(task_type=TaskType.CAUSAL_LM, r=4, block_share=True, target_modules=["q_proj", "v_proj"])
    c, _ = standard_case(out, "oft_llama_block_share", "llama", cfg, notes=[
        "block_share=True: oft_r [1, ceil(out/r), ceil(out/r)]; the same Cayley block is repeated r times on the "
        "diagonal", OFT_FORMULA])
    c.finish()


@case
def case_oft_llama_coft(out):
    cfg = OFTConfig(task_type=TaskType.CAUSAL_LM, r=4, coft=True, eps=0.01, target_modules=["q_proj", "v_proj"])

    def pre_project(pm, gen, rec):
        # the saved oft_r must already be PEFT's projected value, see notes
        with torch.no_grad():
            for m in pm.modules():
                if isinstance(m, peft.tuners.oft.layer.OFTLayer):
                    m.get_delta_weight("default")
        rec.append({"name": "(all oft_r)", "rule": "then projected once by OFTLayer.get_delta_weight (coft=True), "
                                                   "as PEFT's own first forward would"})

    c, _ = standard_case(out, "oft_llama_coft", "llama", cfg, extra_perturb=pre_project, notes=[
        OFT_FORMULA,
        "coft=True: get_delta_weight first REPLACES oft_r in place (torch.no_grad, the parameter itself) by "
        "_project_batch(oft_r, eps_layer): with eps_layer = eps * ceil(out/r)^2 (update_layer) and "
        "e = eps_layer / sqrt(number of blocks in oft_r), every block whose Frobenius norm exceeds e is scaled to norm "
        "e (the 'identity' PEFT subtracts is a zero matrix), smaller blocks are kept; then the Cayley transform as "
        "without coft. Here eps=0.01: q_proj e = 0.01*64/2 = 0.32, v_proj e = 0.01*16/2 = 0.08",
        "because every forward (and merge) projects the parameter in place, the adapter file here was saved AFTER one "
        "projection (the perturbed values projected once), so the tensors on disk are fixed points: projecting again "
        "changes them by float rounding at most; a reimplementation must project on every forward too (training "
        "moves oft_r out of the ball again)"])
    c.finish()


@case
def case_oft_llama_bias_odd_r(out):
    cfg = OFTConfig(task_type=TaskType.CAUSAL_LM, r=3, target_modules=LLAMA_ALL)
    c, _ = standard_case(out, "oft_llama_bias_odd_r", "llama_bias", cfg, notes=[
        "base with biases on every Linear: OFT subtracts the base bias before rotating and adds it back after",
        "r=3 does not divide 32 or 16: blocks of ceil(32/3) = 11 (q/o/down_proj: 3 blocks = 33, cropped to the "
        "first 32 rows and columns), ceil(16/3) = 6 (k/v_proj: 18 -> 16); gate/up_proj out 48 -> blocks of 16, exact",
        "the cropped block-diagonal is no longer orthogonal (the last block is cut); merge and forward crop alike",
        OFT_FORMULA])
    c.finish()


# ----------------------------------------------------------------------------------------------- VeRA
VERA_FORMULA = ("VeRA: shared vera_A [r, max_in] and vera_B [max_out, r] (one pair for the whole model, the largest "
                "in/out over the targeted layers); per layer y = base(x) + lambda_b * ((lambda_d * (x @ A_s.T)) @ "
                "B_s.T) with A_s = vera_A[:, :in], B_s = vera_B[:out, :]; delta W = (lambda_b[:,None] * B_s) @ "
                "(lambda_d[:,None] * A_s)")
VERA_INIT = ("vera_A then vera_B are drawn by _kaiming_init from ONE torch.Generator(cpu).manual_seed("
             "projection_prng_key): uniform(-b, b) with b = sqrt(3)*sqrt(2)/sqrt(fan_in), fan_in = tensor.shape[1] "
             "(so b = sqrt(6/max_in) for vera_A and sqrt(6/r) for vera_B); lambda_b zeros (perturbed here), "
             "lambda_d filled with d_initial (kept, so d_initial shows in the numbers)")
VERA_LOAD = ("saved keys: base_model.vera_A and base_model.vera_B (the model-level BufferDicts, adapter name "
             "stripped; save_projection=True) plus per layer ...vera_lambda_b [out] and ...vera_lambda_d [r]. PEFT "
             "0.13.2 does NOT load the saved projections: set_peft_model_state_dict keeps the key 'base_model.vera_A' "
             "as is, which matches no parameter ('base_model.vera_A.default' is), and load_state_dict(strict=False) "
             "drops it; the projections come from projection_prng_key again: tampered_projection_reload_max_abs_diff is "
             "the difference when a copy of the adapter with vera_A and vera_B times 3 is loaded (0: ignored). "
             "saved_projection_vs_prng_max_abs_diff confirms the file holds exactly the PRNG values")


def vera_projection_check(c, pm, cfg_key):
    sd = load_file(c.path("adapter", "adapter_model.safetensors"))
    a, b = pm.base_model.vera_A["default"], pm.base_model.vera_B["default"]
    c.meta["saved_projection_vs_prng_max_abs_diff"] = {"vera_A": max_diff(sd["base_model.vera_A"], a),
                                                      "vera_B": max_diff(sd["base_model.vera_B"], b)}
    c.meta["projection_shapes"] = {"vera_A": list(a.shape), "vera_B": list(b.shape)}
    c.meta["projection_prng_key"] = cfg_key
    # does PEFT use the projections on disk? load a copy whose vera_A/vera_B are scaled by 3
    tmp = c.path("_tampered")
    shutil.copytree(c.path("adapter"), tmp)
    sd["base_model.vera_A"] = sd["base_model.vera_A"] * 3
    sd["base_model.vera_B"] = sd["base_model.vera_B"] * 3
    save_file(sd, os.path.join(tmp, "adapter_model.safetensors"), metadata={"format": "pt"})
    ref = load_file(c.path("logits_adapter.safetensors"))["logits"]
    back = PeftModel.from_pretrained(c.load_base(), tmp).eval()
    c.meta["tampered_projection_reload_max_abs_diff"] = max_diff(forward_logits(back, c.inputs), ref)
    shutil.rmtree(tmp)


@case
def case_vera_llama(out):
    cfg = VeraConfig(task_type=TaskType.CAUSAL_LM, r=8, vera_dropout=0.1, target_modules=LLAMA_ALL)
    c, pm = standard_case(out, "vera_llama", "llama", cfg, notes=[
        SHAPES_NOTE, VERA_FORMULA, VERA_INIT, VERA_LOAD,
        "all seven Linear kinds targeted: vera_A [8, 48] (max in = 48, down_proj), vera_B [48, 8] (max out = 48, "
        "gate/up_proj); q_proj uses vera_A[:, :32] and vera_B[:32]",
        "vera_dropout=0.1 acts only in training mode (on x before vera_A)"])
    vera_projection_check(c, pm, 0)
    c.finish()


@case
def case_vera_llama_dinit_key(out):
    cfg = VeraConfig(task_type=TaskType.CAUSAL_LM, r=4, d_initial=0.5, projection_prng_key=1234,
                     target_modules=["q_proj", "v_proj"])
    c, pm = standard_case(out, "vera_llama_dinit_key", "llama", cfg, notes=[
        VERA_FORMULA, VERA_INIT, VERA_LOAD,
        "d_initial=0.5 (lambda_d starts at 0.5 everywhere), projection_prng_key=1234: vera_A [4, 32], vera_B [32, 4]"])
    vera_projection_check(c, pm, 1234)
    c.finish()


@case
def case_vera_gpt2_conv1d(out):
    cfg = VeraConfig(task_type=TaskType.CAUSAL_LM, r=8, fan_in_fan_out=True, target_modules=["c_attn", "c_proj", "c_fc"])
    c, pm = standard_case(out, "vera_gpt2_conv1d", "gpt2", cfg, notes=[
        "GPT-2 Conv1D (weight [in, out]): VeRA reads in/out from weight.shape (in first); vera_A/vera_B and the "
        "forward keep the Linear layout (x @ A_s.T ...); fan_in_fan_out=True transposes only the merged delta "
        "(delta W.T is added to the Conv1D weight)",
        "targets c_attn [32 -> 96], attn.c_proj and mlp.c_proj ([32 -> 32], [64 -> 32]), c_fc [32 -> 64]: "
        "vera_A [8, 64], vera_B [96, 8]",
        VERA_FORMULA, VERA_INIT, VERA_LOAD])
    vera_projection_check(c, pm, 0)
    c.finish()


# ----------------------------------------------------------------------------------------------- LN tuning
LN_NOTE = ("LN tuning: each targeted module is REPLACED in the forward by a trainable deepcopy of itself "
           "(ln_tuning_layers[adapter]); saved keys <module>.ln_tuning_layers.weight (and .bias for LayerNorm) -- "
           "the copy's own parameter names; merge swaps the copy in as the base layer (exact), unmerge swaps back; "
           "only one adapter may be active (forward raises otherwise); any module type can be targeted (no type "
           "check in LNTuningModel._create_new_module)")


@case
def case_ln_tuning_llama(out):
    cfg = LNTuningConfig(task_type=TaskType.CAUSAL_LM)
    c, pm = standard_case(out, "ln_tuning_llama", "llama", cfg, notes=[
        "target_modules=None: PEFT fills in TRANSFORMERS_MODELS_TO_LNTUNING_TARGET_MODULES_MAPPING['llama'] = "
        "['input_layernorm', 'post_attention_layernorm', 'norm'] ('norm' matches only model.norm: names match "
        "exactly or as a '.'-separated suffix); LlamaRMSNorm has only a weight", LN_NOTE])
    c.finish()


@case
def case_ln_tuning_bert(out):
    cfg = LNTuningConfig(task_type=TaskType.SEQ_CLS, target_modules=["LayerNorm"])
    c, _ = standard_case(out, "ln_tuning_bert", "bert", cfg, extra_perturb=perturb_modules_to_save, notes=[
        "BERT LayerNorm (weight ones, bias zeros: both perturbed) in the embeddings and in each layer's "
        "attention.output and output (5 modules); PEFT has no default LN-tuning targets for BERT",
        "task_type SEQ_CLS adds modules_to_save=['classifier', 'score'] (as for LoRA): the classifier copy is "
        "perturbed (w + randn*0.1) and saved as base_model.model.classifier.weight/bias",
        "merge_and_unload of LN tuning replaces the LayerNorms; the classifier ModulesToSaveWrapper is left in place "
        "by LNTuningModel._unload_and_optionally_merge (it only unwraps modules with a base_layer), so the merged "
        "model still uses the trained classifier copy",
        LN_NOTE])
    c.finish()


# ----------------------------------------------------------------------------------------------- BOFT
BOFT_FORMULA = ("BOFT rotates the INPUT side: R = P_m.T-conjugated product of butterfly factors (below), s = boft_s "
                "[out, 1]; the layer computes W' = (R @ W.T).T * s = diag(s) W R.T and y = x @ W'.T + b; merge writes "
                "W'; unmerge W = (R.T @ W'.T).T / s. Per factor i: B_i = block_diag(Cayley(boft_R[i, j]) for j), "
                "Cayley(A) = (I - S) @ inverse(I + S), S = (A - A.T)/2 (torch.linalg.solve(I+S, I-S, left=False)); "
                "M_i = P_i @ B_i @ P_i.T with the permutation matrices P_i (buffer boft_P, not saved); "
                "R = M_{m-1} @ ... @ M_1 @ M_0")


@case
def case_boft_llama(out):
    cfg = BOFTConfig(task_type=TaskType.CAUSAL_LM, boft_block_size=4, boft_dropout=0.1, target_modules=LLAMA_ATTN)
    c, _ = standard_case(out, "boft_llama", "llama", cfg, fbd_mode=FBD_ABSENT, notes=[
        SHAPES_NOTE,
        "boft_block_size=4 (boft_block_num 0 = derived: in_features/4 = 8 blocks), boft_n_butterfly_factor=1 (plain "
        "block-diagonal OFT on the input side, P = identity): boft_R [1, 8, 4, 4], boft_s [out, 1]",
        BOFT_FORMULA,
        "init_weights=True: boft_R zeros, boft_s ones (both perturbed here)",
        "boft_dropout=0.1 (MultiplicativeDropoutLayer: replaces random blocks by identity) acts only in training"])
    c.finish()


@case
def case_boft_llama_block_num(out):
    cfg = BOFTConfig(task_type=TaskType.CAUSAL_LM, boft_block_size=0, boft_block_num=4,
                     target_modules=["q_proj", "v_proj", "down_proj"])
    c, _ = standard_case(out, "boft_llama_block_num", "llama", cfg, fbd_mode=FBD_ABSENT, notes=[
        "boft_block_num=4 (boft_block_size 0 = derived: in_features/4): q/v_proj blocks of 8 -> boft_R [1, 4, 8, 8]; "
        "down_proj (in 48) blocks of 12 -> boft_R [1, 4, 12, 12]", BOFT_FORMULA])
    c.finish()


@case
def case_boft_llama_butterfly(out):
    cfg = BOFTConfig(task_type=TaskType.CAUSAL_LM, boft_block_size=4, boft_n_butterfly_factor=2,
                     target_modules=["q_proj", "v_proj", "gate_proj"])
    with fbd("standin"):
        c, pm = standard_case(out, "boft_llama_butterfly", "llama", cfg, fbd_mode=FBD_STANDIN, notes=[
            "boft_n_butterfly_factor=2 (PEFT uses m = factor-1 = 1 internally): boft_R [2, 8, 4, 4]; P_0 = identity, "
            "P_1 = block_butterfly_perm(32, 8/2 = 4 blocks, r = 4/2 = 2, 1): within each 8-index block the 2-index "
            "groups are reordered evens-then-odds, i.e. indices [0,1,4,5,2,3,6,7] + 8k; boft_P saved in this case's "
            "boft_P.safetensors for checking (it is a non-persistent buffer, not in the adapter file)",
            BOFT_FORMULA,
            "made with the CPU stand-in of PEFT's CUDA extension (see boft_fbd_cuda): the numbers a CUDA machine "
            "gives; on a CPU-only machine PEFT 0.13.2 cannot make or load this adapter (it would build boft_R "
            "[1, 8, 4, 4] and fail on the size mismatch), see boft_llama_butterfly_cpu_fallback"])
        ps = {}
        for n, m in pm.named_modules():
            if isinstance(m, boft_layer.BOFTLayer) and hasattr(m, "boft_P"):
                ps[n.replace("base_model.model.", "", 1)] = m.boft_P.detach().clone()
        save_file({k: v.contiguous() for k, v in ps.items()}, c.path("boft_P.safetensors"))
        c.meta["files"]["boft_P.safetensors"] = ("PEFT's permutation matrices (buffer boft_P [factor, in, in] of each "
                                                "layer; key = module path), for checking a reimplementation")
        c.finish()


@case
def case_boft_llama_butterfly_cpu_fallback(out):
    cfg = BOFTConfig(task_type=TaskType.CAUSAL_LM, boft_block_size=4, boft_n_butterfly_factor=2,
                     target_modules=["q_proj", "v_proj"])
    c, _ = standard_case(out, "boft_llama_butterfly_cpu_fallback", "llama", cfg, fbd_mode=FBD_ABSENT, notes=[
        "what PEFT 0.13.2 writes on a machine without the CUDA extension: the saved config says "
        "boft_n_butterfly_factor=2 but update_layer set it to 1 (warning 'Setting boft_n_butterfly_factor to 1'), so "
        "the tensors are boft_R [1, 8, 4, 4] and the numbers are plain block-diagonal BOFT. The leading dimension of "
        "boft_R, not the config, tells how many butterfly factors the file holds (a CUDA machine fails to load it)",
        BOFT_FORMULA])
    c.finish()


# ----------------------------------------------------------------------------------------------- FourierFT
FOURIER_FORMULA = ("FourierFT: indices = torch.randperm(out*in, generator=torch.Generator().manual_seed("
                   "random_loc_seed))[:n_frequency], rows = idx // in, cols = idx % in (not saved: recomputed from "
                   "the seed; PEFT's values are in fourierft_indices.safetensors); dense [out, in] zeros with "
                   "dense[rows, cols] = fourierft_spectrum; delta W = real(ifft2(dense)) * scaling (torch.fft.ifft2, "
                   "normalised by 1/(out*in)); y = base(x) + x @ delta W.T; merge adds delta W to the weight")


def save_fourier_indices(c, pm):
    idx = {}
    for n, m in pm.named_modules():
        if isinstance(m, peft.tuners.fourierft.layer.FourierFTLayer):
            idx[n.replace("base_model.model.", "", 1)] = m.indices["default"].to(torch.int64).contiguous()
    save_file(idx, c.path("fourierft_indices.safetensors"))
    c.meta["files"]["fourierft_indices.safetensors"] = ("PEFT's frequency locations per layer (int64 [2, n_frequency]: "
                                                       "row 0 = output index, row 1 = input index; key = module path)")


@case
def case_fourierft_llama(out):
    cfg = FourierFTConfig(task_type=TaskType.CAUSAL_LM, n_frequency=64, scaling=20.0,
                          target_modules=["q_proj", "v_proj", "down_proj"])
    c, pm = standard_case(out, "fourierft_llama", "llama", cfg, notes=[
        SHAPES_NOTE, FOURIER_FORMULA,
        "init_weights=False (FourierFT's default): the spectrum is torch.randn(n_frequency) drawn in update_layer "
        "(global RNG, here after torch.manual_seed(100)); not perturbed",
        "random_loc_seed=777 (default): the same seed for every layer, so layers of one shape share locations"])
    save_fourier_indices(c, pm)
    c.finish()


@case
def case_fourierft_llama_options(out):
    cfg = FourierFTConfig(task_type=TaskType.CAUSAL_LM, n_frequency=16, scaling=100.0, random_loc_seed=42,
                          n_frequency_pattern={"v_proj": 8}, init_weights=True, target_modules=["q_proj", "v_proj"])
    c, pm = standard_case(out, "fourierft_llama_options", "llama", cfg, notes=[
        FOURIER_FORMULA,
        "n_frequency=16, v_proj 8 via n_frequency_pattern (regex re.match(rf'.*\\.{key}$', module name)), "
        "scaling=100, random_loc_seed=42, init_weights=True (spectrum zeros, perturbed here)"])
    save_fourier_indices(c, pm)
    c.finish()


@case
def case_fourierft_gpt2_conv1d(out):
    cfg = FourierFTConfig(task_type=TaskType.CAUSAL_LM, n_frequency=32, scaling=20.0, fan_in_fan_out=True,
                          target_modules=["c_attn", "c_fc"])
    c, pm = standard_case(out, "fourierft_gpt2_conv1d", "gpt2", cfg, merge=False, notes=[
        "GPT-2 Conv1D: FourierFT reads in/out from weight.shape ([in, out]); the spectrum, indices and delta W are in "
        "the Linear layout [out, in] and the forward adds x @ delta W.T, so the unmerged numbers are right",
        "NO logits_merged: PEFT 0.13.2 cannot merge FourierFT into a Conv1D: FourierFTLinear.merge does "
        "weight.data += get_delta_weight() without transposing for fan_in_fan_out, a shape error for c_attn "
        "([32, 96] += [96, 32]) and c_fc (see merge_refused); on a square Conv1D (attn.c_proj 32x32) it would add the "
        "un-transposed delta silently (wrong numbers). A reimplementation should merge delta W.T (as LoRA does)",
        FOURIER_FORMULA])
    try:
        pm.merge_and_unload()
        c.meta["merge_refused"] = None
    except Exception as e:  # PEFT's own failure, recorded as a fact about PEFT
        c.meta["merge_refused"] = f"{type(e).__name__}: {e}"
    save_fourier_indices(c, pm)
    c.finish()


# ----------------------------------------------------------------------------------------------- refusals
@case
def case_refusals_0132(out):
    """What PEFT 0.13.2 refuses for these methods (one meta.json of error messages, no tensors)."""
    c = MCase(out, "refusals_0132", "gpt2")
    c.meta["model_class"] = "several"
    tries = {
        "loha_gpt2_conv1d": ("gpt2", LoHaConfig(r=4, target_modules=["c_attn"])),
        "lokr_gpt2_conv1d": ("gpt2", LoKrConfig(r=4, target_modules=["c_attn"])),
        "oft_gpt2_conv1d": ("gpt2", OFTConfig(r=4, target_modules=["c_attn"])),
        "boft_gpt2_conv1d": ("gpt2", BOFTConfig(boft_block_size=4, fan_in_fan_out=True, target_modules=["c_attn"])),
        "boft_block_size_and_num": (None, lambda: BOFTConfig(boft_block_size=4, boft_block_num=8,
                                                             target_modules=["q_proj"])),
        "boft_block_size_not_dividing_in": ("llama", BOFTConfig(boft_block_size=5, target_modules=["q_proj"])),
        "boft_butterfly_too_big": ("llama", "standin", BOFTConfig(boft_block_size=8, boft_n_butterfly_factor=4,
                                                                  target_modules=["q_proj"])),
        "vera_embedding": ("llama", VeraConfig(r=4, target_modules=["embed_tokens"])),
        "fourierft_n_frequency_too_big": ("llama", FourierFTConfig(n_frequency=2000, target_modules=["k_proj"])),
        "oft_r_zero": ("llama", OFTConfig(r=0, target_modules=["q_proj"])),
        "loha_no_target_modules": ("llama", LoHaConfig(r=4)),
        "vera_two_adapters_different_prng_key": ("llama", "two", VeraConfig(r=4, target_modules=["q_proj"]),
                                                 VeraConfig(r=4, projection_prng_key=7, target_modules=["q_proj"])),
    }
    res = {}
    for name, spec in tries.items():
        try:
            kind = spec[0]
            if kind is None:
                spec[1]()
            elif len(spec) >= 3 and spec[1] == "standin":
                with fbd("standin"):
                    get_peft_model(MCase.new_base(_Kind(kind)), spec[2])
            elif len(spec) >= 3 and spec[1] == "two":
                pm = get_peft_model(MCase.new_base(_Kind(kind)), spec[2])
                pm.add_adapter("other", spec[3])
            else:
                get_peft_model(MCase.new_base(_Kind(kind)), spec[1])
            res[name] = {"refused": False}
        except Exception as e:  # the refusal is the fact recorded
            res[name] = {"refused": True, "error": f"{type(e).__name__}: {e}"}
    c.meta["refusals"] = res
    c.meta["notes"] = ["each entry: the PEFT 0.13.2 call (see tools/peft-reference/make_method_cases.py "
                       "case_refusals_0132) and the exception it raised; refused=false means PEFT accepted it"]
    c.finish()


@case
def case_bias_saving_0132(out):
    """Which trained biases PEFT 0.13.2 saves for VeRA, FourierFT and BOFT (facts only, no tensors)."""
    c = MCase(out, "bias_saving_0132", "llama_bias")
    c.meta["model_class"] = "LlamaForCausalLM (tiny, attention_bias and mlp_bias)"
    c.new_base()
    c.write_inputs(lm_inputs())
    res = {}
    for label, cfg in (("vera_bias_all", VeraConfig(r=4, bias="all", target_modules=["q_proj"])),
                       ("vera_bias_vera_only", VeraConfig(r=4, bias="vera_only", target_modules=["q_proj"])),
                       ("fourierft_bias_fourier_only", FourierFTConfig(n_frequency=8, bias="fourier_only",
                                                                       target_modules=["q_proj"])),
                       ("boft_bias_boft_only", BOFTConfig(boft_block_size=4, bias="boft_only", target_modules=["q_proj"])),
                       ("boft_bias_all", BOFTConfig(boft_block_size=4, bias="all", target_modules=["q_proj"]))):
        base = c.new_base()
        torch.manual_seed(SEED_PEFT)
        pm = get_peft_model(base, cfg)
        trained = [n for n, p in pm.named_parameters() if p.requires_grad and n.endswith("bias")]
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if p.requires_grad and n.endswith("bias"):
                    p.add_(0.5)   # as training would move them
        ref = forward_logits(pm.eval(), c.inputs)
        tmp = os.path.join(c.dir, "_tmp")
        pm.save_pretrained(tmp)
        saved = sorted(k for k in load_file(os.path.join(tmp, "adapter_model.safetensors")) if k.endswith("bias"))
        back = PeftModel.from_pretrained(c.load_base(), tmp).eval()
        res[label] = {"trainable_bias_parameters": len(trained), "examples": trained[:2], "saved_bias_keys": len(saved),
                      "saved_examples": saved[:2], "reload_max_abs_diff": max_diff(forward_logits(back, c.inputs), ref)}
        shutil.rmtree(tmp)
    os.remove(c.path("inputs.json"))
    c.meta["files"] = {}
    c.meta["bias_saving"] = res
    c.meta["notes"] = [
        "each entry: get_peft_model with that bias option, every trainable bias += 0.5 (as training would), "
        "save_pretrained, PeftModel.from_pretrained, logits compared (reload_max_abs_diff)",
        "VeRA and FourierFT make the biases trainable (_mark_only_adapters_as_trainable) but get_peft_model_state_dict "
        "keeps only 'vera_lambda_' (+ projections) / 'fourierft_' keys: trained biases are LOST on save",
        "BOFT bias='boft_only' saves none either (it looks for '<module>.bias', the wrapped bias is "
        "'<module>.base_layer.bias', LoRA's lora_only bug); bias='all' saves every bias (wrapped ones under "
        "'...base_layer.bias') and reloads exactly"]
    c.finish()


class _Kind:
    """Lets MCase.new_base run without a case folder."""

    def __init__(self, kind):
        self.kind = kind


# ----------------------------------------------------------------------------------------------- PeftMixedModel
def wrap_chain(model):
    """For each wrapped module: adapter layer types from the outside in."""
    chains = {}
    for n, m in model.named_modules():
        if isinstance(m, BaseTunerLayer) and ".base_layer" not in n:
            chain, layer = [], m
            while isinstance(layer, BaseTunerLayer):
                names = sorted(set(a for ln in layer.adapter_layer_names for a in getattr(layer, ln).keys()))
                chain.append(f"{type(layer).__module__.split('.')[2]}.{type(layer).__name__}{names}")
                layer = layer.base_layer
            chains[n.replace("base_model.model.", "", 1)] = chain
    return chains


def make_standalone(c, name, cfg, seed_offset, rec):
    base = c.new_base()
    torch.manual_seed(SEED_PEFT + seed_offset)
    pm = get_peft_model(base, cfg)
    perturb(pm, torch.Generator().manual_seed(SEED_PERTURB + seed_offset), rec)
    pm.eval()
    c.save_adapter(pm, f"adapter_{name}")
    return pm


def mixed_case(out, name, specs, notes):
    c = MCase(out, name, "llama")
    base = c.build_base()
    c.write_inputs(lm_inputs())
    lb = c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    c.meta["peft_config_passed"] = {n: config_passed(cfg) for n, cfg in specs}
    c.meta["peft_config_class"] = {n: type(cfg).__name__ for n, cfg in specs}
    rec, alone = [], {}
    for i, (n, cfg) in enumerate(specs):
        pm = make_standalone(c, n, cfg, i, rec)
        alone[n] = c.logits(f"logits_{n}.safetensors", forward_logits(pm, c.inputs),
                            f"adapter_{n}/ alone (a plain PeftModel), eval")
        c.reload_check(alone[n], f"adapter_{n}", n)
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS,
                       "get_peft_model": f"adapter i (0-based, in the order {[n for n, _ in specs]}): "
                                         f"torch.manual_seed({SEED_PEFT} + i) before its own get_peft_model on a fresh base",
                       "perturbation": f"torch.Generator().manual_seed({SEED_PERTURB} + i)"}
    c.meta["perturbation"] = PERTURB_RULE + " (per adapter, on its own PeftModel)"
    c.meta["perturbed_parameters"] = rec
    mm = PeftMixedModel.from_pretrained(c.load_base(), c.path(f"adapter_{specs[0][0]}"), adapter_name=specs[0][0])
    for n, _ in specs[1:]:
        mm.load_adapter(c.path(f"adapter_{n}"), adapter_name=n)
    names = [n for n, _ in specs]
    mm.set_adapter(names)
    mm.eval()
    c.meta["wrapping"] = wrap_chain(mm)
    ref = c.logits("logits_mixed.safetensors", forward_logits(mm, c.inputs),
                   f"PeftMixedModel.from_pretrained(base, adapter_{names[0]}) + load_adapter of the others in order, "
                   f"set_adapter({names}), eval")
    c.meta["adapter_effect_max_abs"] = max_diff(ref, lb)
    checks = {}
    for n in names:
        mm.set_adapter(n)
        checks[f"mixed_with_only_{n}_active_vs_logits_{n}"] = max_diff(forward_logits(mm, c.inputs), alone[n])
    mm.set_adapter(names)
    with mm.disable_adapter():
        checks["disabled_vs_base"] = max_diff(forward_logits(mm, c.inputs), lb)
    c.meta["mixed_checks_max_abs_diff"] = checks
    merged = mm.merge_and_unload()
    ml = c.logits("logits_merged.safetensors", forward_logits(merged, c.inputs),
                  "PeftMixedModel.merge_and_unload() with all adapters active, eval")
    c.meta["merged_vs_unmerged_max_abs_diff"] = max_diff(ml, ref)
    c.meta["files"]["adapter_<name>/"] = ("each adapter made and saved ALONE by a plain PeftModel (PeftMixedModel "
                                          "cannot save); folders named after the adapter name used in the mixed model")
    c.meta["notes"] += notes + [
        "PeftMixedModel 0.13.2 mixes LORA, LOHA, LOKR, ADALORA, OFT (COMPATIBLE_TUNER_TYPES); the second adapter on a "
        "module already wrapped by another type WRAPS that layer (its base_layer is the first adapter's layer), see "
        "'wrapping' (outermost first): the outer layer computes base_layer(x) = the inner adapted output, then adds "
        "its own delta (LoRA/LoHa/LoKr: the delta of the innermost weight W, on x) or rotates it (OFT)",
        "adapter names 'one' and 'two' are used because PEFT matches adapter names as substrings of keys"]
    return c


@case
def case_mixed_lora_loha_separate(out):
    c = mixed_case(out, "mixed_lora_loha_separate", [
        ("one", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=LLAMA_ATTN)),
        ("two", LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8, target_modules=["gate_proj", "up_proj", "down_proj"]))],
        ["PEFT's guide example: LoRA on attention (q/k/v/o) + LoHa on the FFN (gate/up/down): no module has two adapters, "
         "so the mixed forward is each adapter applied to its own modules"])
    c.finish()


@case
def case_mixed_lora_loha_same(out):
    c = mixed_case(out, "mixed_lora_loha_same", [
        ("one", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])),
        ("two", LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8, target_modules=["q_proj", "v_proj", "o_proj"]))],
        ["q_proj and v_proj carry both: y = W x + s_lora B A x + (LoHa delta W) x (the LoHa layer wraps the LoRA "
         "layer; both deltas are of the base weight, the sum is order-independent); o_proj has LoHa only"])
    c.finish()


@case
def case_mixed_lora_lokr_same(out):
    c = mixed_case(out, "mixed_lora_lokr_same", [
        ("one", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])),
        ("two", LoKrConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8, target_modules=["v_proj", "down_proj"]))],
        ["v_proj and down_proj carry both (LoKr wraps LoRA): y = W x + s B A x + kron(w1, w2) x (LoKr 0.13.2 "
         "ignores alpha)"])
    c.finish()


@case
def case_mixed_lora_oft_same(out):
    c = mixed_case(out, "mixed_lora_oft_same", [
        ("one", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])),
        ("two", OFTConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules=["q_proj", "v_proj", "o_proj"]))],
        ["LoRA loaded first, OFT second: OFT wraps LoRA and rotates the LoRA-adapted output: "
         "y = ((W x + s B A x) - b) R + b (b = the innermost layer's bias, none here); merge: W' = R.T (W + s B A)",
         "order matters: compare mixed_oft_lora_same (same two kinds of adapter, OFT inside)"])
    c.finish()


@case
def case_mixed_oft_lora_same(out):
    c = mixed_case(out, "mixed_oft_lora_same", [
        ("one", OFTConfig(task_type=TaskType.CAUSAL_LM, r=4, target_modules=["q_proj", "v_proj", "o_proj"])),
        ("two", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))],
        ["OFT loaded first, LoRA second: LoRA wraps OFT: y = (W x) R + s B A x (the LoRA delta is NOT rotated); "
         "merge: W' = R.T W + s B A"])
    c.finish()


@case
def case_mixed_refusals(out):
    """What PeftMixedModel 0.13.2 refuses (messages only)."""
    c = MCase(out, "mixed_refusals", "llama")
    res = {}

    def attempt(label, fn):
        try:
            fn()
            res[label] = {"refused": False}
        except Exception as e:  # the refusal is the fact recorded
            res[label] = {"refused": True, "error": f"{type(e).__name__}: {e}"}

    def mixed():
        return get_peft_model(c.new_base(), LoraConfig(r=4, target_modules=["q_proj"]), adapter_name="one", mixed=True)

    for label, cfg in (("add_vera", VeraConfig(r=4, target_modules=["k_proj"])),
                       ("add_ia3", IA3Config(target_modules=["k_proj"], feedforward_modules=[])),
                       ("add_ln_tuning", LNTuningConfig(target_modules=["norm"])),
                       ("add_boft", BOFTConfig(boft_block_size=4, target_modules=["k_proj"])),
                       ("add_fourierft", FourierFTConfig(n_frequency=8, target_modules=["k_proj"])),
                       ("add_prompt_tuning", peft.PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=2))):
        attempt(label, lambda cfg=cfg: mixed().add_adapter("two", cfg))
    attempt("first_adapter_vera", lambda: get_peft_model(c.new_base(), VeraConfig(r=4, target_modules=["q_proj"]),
                                                         mixed=True))

    def two_bias():
        m = get_peft_model(c.new_base(), LoraConfig(r=4, target_modules=["q_proj"], bias="all"), adapter_name="one",
                           mixed=True)
        m.add_adapter("two", LoraConfig(r=4, target_modules=["k_proj"], bias="all"))
    attempt("two_adapters_with_bias_all", two_bias)
    attempt("save_pretrained", lambda: mixed().save_pretrained(os.path.join(c.dir, "_should_not_exist")))
    attempt("add_weighted_adapter", lambda: mixed().add_weighted_adapter(["one"], [1.0], "w"))
    c.meta["model_class"] = "LlamaForCausalLM (tiny)"
    c.meta["refusals"] = res
    c.meta["notes"] = [
        "each entry: a PeftMixedModel call (see case_mixed_refusals) and the exception PEFT 0.13.2 raised",
        "two_adapters_with_bias_all is ACCEPTED although MixedModel._check_new_adapter_config means to allow only one "
        "adapter with a bias: it iterates `for config in self.peft_config` (the dict's keys, i.e. adapter names), so "
        "getattr(name, 'bias', None) is always None and the check never fires"]
    c.finish()


# ----------------------------------------------------------------------------------------------- training
TRAIN_RULE = ("plain loop, as /work/shared/tools/peft-lab/example_training_reference.py: PeftModel.from_pretrained(base, "
              "initial_adapter, is_trainable=True).train(); torch.optim.AdamW(trainable parameters, lr, betas=(0.9, "
              "0.999), eps=1e-8, weight_decay=0.01); each step: loss = model(input_ids=rows, labels=rows).loss (mean "
              "causal-LM cross-entropy over all rows, labels shifted inside the model), backward, record loss.item(), "
              "opt.step(), opt.zero_grad(set_to_none=True); all rows every step; no scheduler, no clipping")


def train_loop(model, params, rows, lr, steps):
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(steps):
        loss = model(input_ids=rows, labels=rows).loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    return losses


def data_rows():
    return torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(SEED_DATA))


def tensor_changes(c, a_dir, b_dir):
    a = load_file(c.path(a_dir, "adapter_model.safetensors"))
    b = load_file(c.path(b_dir, "adapter_model.safetensors"))
    return {k: max_diff(a[k], b[k]) for k in sorted(a) if k in b}


def eval_loss(model, rows):
    model.eval()
    with torch.no_grad():
        return model(input_ids=rows, labels=rows).loss.item()


def training_case(out, name, cfg, *, lr, steps=5, notes=(), fbd_mode=None):
    c = MCase(out, name, "llama")
    base = c.build_base()
    c.write_inputs(lm_inputs(), "for logits_final only")
    c.meta["peft_config_passed"] = config_passed(cfg)
    c.meta["peft_config_class"] = type(cfg).__name__
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg)
    rec = []
    perturb(pm, torch.Generator().manual_seed(SEED_PERTURB), rec)
    c.meta["perturbation"] = PERTURB_RULE + " -- then saved as initial_adapter/ (the training starts from that file)"
    c.meta["perturbed_parameters"] = rec
    if fbd_mode:
        c.meta["boft_fbd_cuda"] = fbd_mode
    c.save_adapter(pm, "initial_adapter")
    rows = data_rows()
    with open(c.path("data.json"), "w") as fh:
        json.dump({"input_ids": rows.tolist()}, fh)
    c.meta["files"]["data.json"] = "training rows: input_ids [4, 12] (labels = input_ids)"
    model = c.reload("initial_adapter", is_trainable=True).train()
    params = [p for p in model.parameters() if p.requires_grad]
    c.meta["trained_parameters"] = [n for n, p in model.named_parameters() if p.requires_grad]
    c.meta["trainable_parameters"] = trainable(model)
    losses = train_loop(model, params, rows, lr, steps)
    c.save_adapter(model, "final_adapter")
    after = eval_loss(model, rows)
    lf = c.logits("logits_final.safetensors", forward_logits(model, c.inputs),
                  "the trained model (final_adapter) on inputs.json, eval")
    reloaded = c.reload("final_adapter")
    c.meta["reload_max_abs_diff"] = {"final_adapter_logits": max_diff(forward_logits(reloaded, c.inputs), lf),
                                     "final_adapter_loss": abs(eval_loss(reloaded, rows) - after)}
    with open(c.path("losses.json"), "w") as fh:
        json.dump({"losses": losses, "loss_after_training": after}, fh, indent=1)
    c.meta["files"]["losses.json"] = ("losses: the training loss at each step, before that step's update (train mode); "
                                      "loss_after_training: the loss on the same rows after the last update (eval)")
    c.meta["files"]["initial_adapter/"] = c.meta["files"].pop("initial_adapter/") + "; the adapter training starts from"
    c.meta["files"]["final_adapter/"] = c.meta["files"].pop("final_adapter/") + "; after the last step"
    c.meta["training"] = {"rule": TRAIN_RULE, "lr": lr, "steps": steps, "weight_decay": 0.01, "betas": [0.9, 0.999],
                          "eps": 1e-8, "rows_seed": f"torch.randint(0, 64, (4, 12), generator=torch.Generator()"
                                                    f".manual_seed({SEED_DATA}))", "losses": losses,
                          "loss_after_training": after}
    c.meta["adapter_tensor_change_max_abs"] = tensor_changes(c, "initial_adapter", "final_adapter")
    c.meta["seeds"] = {"base": SEED_BASE, "get_peft_model": SEED_PEFT, "perturbation": SEED_PERTURB, "rows": SEED_DATA}
    c.meta["notes"] += list(notes) + [
        "dropouts are 0 (the default) so the steps are deterministic; module_dropout 0 still draws torch.rand(1) per "
        "LyCORIS/OFT layer and step in training mode without effect",
        "suggested check: every loss to 1e-4, final adapter tensors to 1e-4 (AdamW's update is ~lr per step whatever "
        "the gradient size, so a gradient that is exactly 0 in PEFT (e.g. the diagonal of oft_r / boft_R, whose "
        "skew-symmetric part cancels it) must also be 0, not 1e-12, in a reimplementation)"]
    c.meta["adapter_effect_max_abs"] = None
    print(f"[{name}] losses {[round(x, 5) for x in losses]} -> {after:.5f}")
    return c


@case
def case_train_loha_llama(out):
    training_case(out, "train_loha_llama", LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8,
                                                      target_modules=["q_proj", "v_proj", "down_proj"]), lr=5e-3).finish()


@case
def case_train_lokr_llama(out):
    training_case(out, "train_lokr_llama", LoKrConfig(task_type=TaskType.CAUSAL_LM, r=2, alpha=4, decompose_both=True,
                                                      target_modules=["q_proj", "v_proj", "down_proj"]), lr=5e-3,
                  notes=[LOKR_ALPHA_NOTE]).finish()


@case
def case_train_oft_llama(out):
    training_case(out, "train_oft_llama", OFTConfig(task_type=TaskType.CAUSAL_LM, r=4,
                                                    target_modules=["q_proj", "v_proj", "o_proj"]), lr=5e-3).finish()


@case
def case_train_vera_llama(out):
    training_case(out, "train_vera_llama", VeraConfig(task_type=TaskType.CAUSAL_LM, r=8,
                                                      target_modules=["q_proj", "v_proj", "down_proj"]), lr=5e-3,
                  notes=["trained: vera_lambda_b and vera_lambda_d only (vera_A/vera_B are frozen buffers)"]).finish()


@case
def case_train_ln_tuning_llama(out):
    training_case(out, "train_ln_tuning_llama", LNTuningConfig(task_type=TaskType.CAUSAL_LM), lr=5e-3).finish()


@case
def case_train_boft_llama(out):
    training_case(out, "train_boft_llama", BOFTConfig(task_type=TaskType.CAUSAL_LM, boft_block_size=4,
                                                      target_modules=["q_proj", "v_proj", "o_proj"]), lr=5e-3,
                  fbd_mode=FBD_ABSENT).finish()


@case
def case_train_fourierft_llama(out):
    training_case(out, "train_fourierft_llama", FourierFTConfig(task_type=TaskType.CAUSAL_LM, n_frequency=64,
                                                                scaling=20.0, init_weights=True,
                                                                target_modules=["q_proj", "v_proj", "down_proj"]),
                  lr=5e-3, notes=["init_weights=True then perturbed (zeros -> randn*0.1)"]).finish()


def standalone_name(mixed_name, adapter):
    """Mixed-model parameter name -> the name in a plain PeftModel holding that adapter alone as 'default'."""
    parts = mixed_name.split(".")
    i = parts.index(adapter)
    head = [p for p in parts[:i - 1] if p != "base_layer"]
    return ".".join(head + [parts[i - 1], "default"] + parts[i + 1:])


@case
def case_train_mixed_lora_loha(out):
    c = MCase(out, "train_mixed_lora_loha", "llama")
    c.build_base()
    c.write_inputs(lm_inputs(), "for logits_final only")
    specs = [("one", LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=LLAMA_ATTN)),
             ("two", LoHaConfig(task_type=TaskType.CAUSAL_LM, r=4, alpha=8,
                                target_modules=["gate_proj", "up_proj", "down_proj"]))]
    c.meta["peft_config_passed"] = {n: config_passed(cfg) for n, cfg in specs}
    c.meta["peft_config_class"] = {n: type(cfg).__name__ for n, cfg in specs}
    rec = []
    for i, (n, cfg) in enumerate(specs):
        base = c.new_base()
        torch.manual_seed(SEED_PEFT + i)
        pm = get_peft_model(base, cfg)
        perturb(pm, torch.Generator().manual_seed(SEED_PERTURB + i), rec)
        c.save_adapter(pm, f"initial_adapter_{n}")
    c.meta["perturbed_parameters"] = rec
    c.meta["perturbation"] = PERTURB_RULE + " (per adapter i: seeds 100+i / 101+i, each on its own PeftModel)"
    rows = data_rows()
    with open(c.path("data.json"), "w") as fh:
        json.dump({"input_ids": rows.tolist()}, fh)
    c.meta["files"]["data.json"] = "training rows: input_ids [4, 12] (labels = input_ids)"
    mm = PeftMixedModel.from_pretrained(c.load_base(), c.path("initial_adapter_one"), adapter_name="one",
                                        is_trainable=True)
    mm.load_adapter(c.path("initial_adapter_two"), adapter_name="two", is_trainable=True)
    mm.set_adapter(["one", "two"])   # also marks both adapters trainable
    mm.train()
    named = [(n, p) for n, p in mm.named_parameters() if p.requires_grad]
    c.meta["trained_parameters"] = [n for n, _ in named]
    losses = train_loop(mm, [p for _, p in named], rows, 5e-3, 5)
    after = eval_loss(mm, rows)
    lf = c.logits("logits_final.safetensors", forward_logits(mm, c.inputs), "the trained mixed model, both adapters, eval")
    # save each adapter alone: a plain PeftModel of its initial adapter, trained tensors copied in by name
    checks = {}
    for n, _ in specs:
        sm = c.reload(f"initial_adapter_{n}")
        own = dict(sm.named_parameters())
        with torch.no_grad():
            for mn, p in named:
                if f".{n}." in mn or mn.endswith(f".{n}"):
                    own[standalone_name(mn, n)].copy_(p)
        c.save_adapter(sm, f"final_adapter_{n}")
        mm.set_adapter(n)
        alone = c.logits(f"logits_final_{n}.safetensors", forward_logits(mm, c.inputs),
                         f"the trained mixed model with only '{n}' active, eval")
        checks[f"final_adapter_{n}_alone_vs_logits_final_{n}"] = max_diff(forward_logits(c.reload(f"final_adapter_{n}"),
                                                                                         c.inputs), alone)
    m2 = PeftMixedModel.from_pretrained(c.load_base(), c.path("final_adapter_one"), adapter_name="one")
    m2.load_adapter(c.path("final_adapter_two"), adapter_name="two")
    m2.set_adapter(["one", "two"])
    checks["both_final_adapters_mixed_vs_logits_final"] = max_diff(forward_logits(m2.eval(), c.inputs), lf)
    c.meta["reload_max_abs_diff"] = checks
    with open(c.path("losses.json"), "w") as fh:
        json.dump({"losses": losses, "loss_after_training": after}, fh, indent=1)
    c.meta["files"]["losses.json"] = ("losses: the loss at each step before its update (train mode); "
                                      "loss_after_training: after the last update (eval)")
    for k in list(c.meta["files"]):
        if k.startswith("initial_adapter_"):
            c.meta["files"][k] += "; the adapter the training starts from (made alone by a plain PeftModel)"
        if k.startswith("final_adapter_"):
            c.meta["files"][k] += ("; after training, saved alone through a plain PeftModel (PeftMixedModel cannot "
                                   "save): the trained tensors of that adapter copied into it by name")
    c.meta["training"] = {"rule": TRAIN_RULE.replace("PeftModel.from_pretrained(base, initial_adapter, is_trainable=True)",
                                                     "PeftMixedModel.from_pretrained(base, initial_adapter_one, 'one', "
                                                     "is_trainable=True) + load_adapter(initial_adapter_two, 'two', "
                                                     "is_trainable=True) + set_adapter(['one', 'two'])"),
                          "lr": 5e-3, "steps": 5, "losses": losses, "loss_after_training": after}
    c.meta["adapter_tensor_change_max_abs"] = {n: tensor_changes(c, f"initial_adapter_{n}", f"final_adapter_{n}")
                                               for n, _ in specs}
    c.meta["notes"] += ["LoRA 'one' on attention (q/k/v/o), LoHa 'two' on the FFN (gate/up/down), trained together "
                        "with one AdamW over both", "the mixed model's parameter names are the plain ones with the "
                        "adapter name ('...q_proj.lora_A.one.weight'); where two adapters wrap one module the inner "
                        "one's names gain '.base_layer' (not the case here)"]
    print(f"[train_mixed_lora_loha] losses {[round(x, 5) for x in losses]} -> {after:.5f}")
    c.finish()


# ----------------------------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("cases", nargs="*", help=f"subset of: {', '.join(CASES)}")
    a = ap.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    failed = {}
    for name in a.cases or CASES:
        try:
            CASES[name](a.out)
        except Exception as e:  # record and continue: no case may be skipped silently
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
    fpath = os.path.join(a.out, "FAILED_methods.json")
    prev = json.load(open(fpath)) if os.path.exists(fpath) else {}
    prev = {k: v for k, v in prev.items() if k not in (a.cases or CASES)}
    prev.update(failed)
    if prev:
        json.dump(prev, open(fpath, "w"), indent=2)
    elif os.path.exists(fpath):
        os.remove(fpath)
    if failed:
        print("FAILED:", json.dumps(failed, indent=2))
        sys.exit(1)


if __name__ == "__main__":
    main()
