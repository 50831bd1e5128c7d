"""Formula-based reference cases for PeftHost's own formats BOTTLENECK and BITFIT (PEFT has neither).

No PEFT code runs here: the base models are transformers models (the shared tiny bases of make_method_cases.py), the
adapters are applied by plain torch, straight from the formulas of docs/methods/bottleneck.md and docs/methods/bitfit.md:

    BOTTLENECK  forward hooks on the targeted Linear / Conv1D modules:
                serial    y = h + scaling * up(act(down(h)))      with h = module(x)
                parallel  y = h + scaling * up(act(down(x)))      beside the module (x = its input)
                several active adapters on one module: y = h + sum over adapters of their terms (all from the same h, x)
    BITFIT      the targeted modules' bias parameters replaced by the adapter's biases (merge = the same numbers)

Each case folder is laid out like the PEFT cases (adapter/ with adapter_config.json + adapter_model.safetensors in
PEFT's conventions, inputs.json, logits_*.safetensors, meta.json); train_* cases hold a few plain AdamW steps.

How to run (after make_method_cases.py, which writes tests/fixtures/peft/bases/):
    source /work/lab/env.sh
    /usr/bin/python3 tools/peft-reference/make_formula_cases.py [--out tests/fixtures/peft] [case ...]

Adapter values are not PEFT-like initial values (those would be no-ops): they are drawn from
torch.Generator().manual_seed(201) as each meta.json says, in the order of the module walk (named_modules order of the
base model) and, per module, down.weight, down.bias, up.weight, up.bias (BITFIT: bias := bias + randn*0.1).

This is our own code. Nothing in the build or CI runs it.
"""
import argparse
import json
import os
import re
import shutil
import sys
import traceback

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cases import DEFAULT_OUT, jsonable, lm_inputs, randint_ids, st_layout  # noqa: E402

import transformers  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import BertForSequenceClassification, GPT2LMHeadModel, LlamaForCausalLM  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

GENERATOR = "tools/peft-reference/make_formula_cases.py"
SEED_VALUES = 201
SEED_DATA = 3
BASE_CLASSES = {"llama": LlamaForCausalLM, "llama_bias": LlamaForCausalLM, "gpt2": GPT2LMHeadModel,
                "bert": BertForSequenceClassification}
ACTS = {"relu": F.relu, "gelu": F.gelu, "silu": F.silu, "tanh": torch.tanh}
ACT_NOTE = ("activations: relu; gelu = the exact erf form (torch.nn.functional.gelu, approximate='none'); "
            "silu = x*sigmoid(x); tanh")
COMMON_DEFAULTS = {"base_model_name_or_path": None, "revision": None, "inference_mode": True, "task_type": None,
                   "layers_to_transform": None, "layers_pattern": None, "modules_to_save": None}
BOTTLENECK_DEFAULTS = {"peft_type": "BOTTLENECK", "target_modules": None, "adapter_size": None,
                       "reduction_factor": None, "adapter_act": "relu", "adapter_dropout": 0.0, "parallel": False,
                       "scaling": 1.0, "init_weights": True}
BITFIT_DEFAULTS = {"peft_type": "BITFIT", "target_modules": None}


# ----------------------------------------------------------------------------------------------- targeting
def matches(cfg, key):
    """PEFT's check_target_module_exists (peft/tuners/tuners_utils.py), the rule both formats reuse."""
    tm = cfg["target_modules"]
    if isinstance(tm, str):
        return re.fullmatch(tm, key) is not None
    if key in tm:
        return True
    found = any(key.endswith("." + t) for t in tm)
    idx = cfg.get("layers_to_transform")
    if found and idx is not None and (not isinstance(idx, list) or len(idx) > 0):
        pat = cfg.get("layers_pattern")
        if not pat:
            m = re.match(r".*\.[^.]*\.(\d+)\.", key)
        else:
            m = None
            for p in ([pat] if isinstance(pat, str) else pat):
                m = re.match(rf".*\.{p}\.(\d+)\.", key)
                if m:
                    break
        if m is None:
            return False
        i = int(m.group(1))
        return i == idx if isinstance(idx, int) else i in idx
    return found


def in_out(module):
    if isinstance(module, torch.nn.Linear):
        return module.in_features, module.out_features
    if isinstance(module, Conv1D):
        return module.weight.shape[0], module.weight.shape[1]
    raise TypeError(f"BOTTLENECK targets Linear or Conv1D modules, got {type(module).__name__}")


# ----------------------------------------------------------------------------------------------- case plumbing
class FCase:
    def __init__(self, out_root, name, kind):
        self.name, self.kind, self.out_root = name, kind, out_root
        self.dir = os.path.join(out_root, name)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.base_dir = os.path.join(out_root, "bases", kind)
        if not os.path.isfile(os.path.join(self.base_dir, "model.safetensors")):
            raise FileNotFoundError(f"{self.base_dir} is missing: run make_method_cases.py first")
        self.meta = {"case": name, "generator": GENERATOR, "model_class": BASE_CLASSES[kind].__name__,
                     "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                                  "python": sys.version.split()[0]},
                     "independent_of_peft": "no PEFT code: plain torch on transformers modules (forward hooks / bias "
                                            "replacement), from the formulas in docs/methods",
                     "base": {"folder": f"../bases/{kind}", "base_model_name_or_path": f"../bases/{kind}"},
                     "files": {f"../bases/{kind}/": "shared base model folder (make_method_cases.py)"},
                     "logits_shapes": {}, "notes": []}

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def base(self):
        return BASE_CLASSES[self.kind].from_pretrained(self.base_dir, attn_implementation="eager").eval()

    def write_inputs(self):
        if self.kind == "bert":
            self.inputs = {"input_ids": randint_ids(2, 7).tolist(), "attention_mask": [[1] * 7, [1] * 5 + [0] * 2],
                           "token_type_ids": [[0] * 4 + [1] * 3, [0] * 3 + [1] * 4]}
        else:
            self.inputs = lm_inputs()
        with open(self.path("inputs.json"), "w") as fh:
            json.dump(self.inputs, fh)
        self.meta["inputs"] = self.inputs
        self.meta["files"]["inputs.json"] = "forward inputs"

    def forward(self, model):
        with torch.no_grad():
            return model(**{k: torch.tensor(v) for k, v in self.inputs.items()}).logits

    def logits(self, fname, t, what):
        save_file({"logits": t.detach().float().contiguous()}, self.path(fname))
        self.meta["logits_shapes"][fname] = list(t.shape)
        self.meta["files"][fname] = f"key 'logits', float32, shape {list(t.shape)}: {what}"
        return t

    def write_adapter(self, folder, cfg, tensors):
        d = self.path(folder)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "adapter_config.json"), "w") as fh:
            json.dump(cfg, fh, indent=2, sort_keys=True)
        save_file({k: v.detach().contiguous() for k, v in sorted(tensors.items())},
                  os.path.join(d, "adapter_model.safetensors"), metadata={"format": "pt"})
        self.meta.setdefault("adapter_config_saved", {})[folder] = cfg
        self.meta.setdefault("adapter_safetensors_layout", {})[folder] = st_layout(
            os.path.join(d, "adapter_model.safetensors"))
        self.meta["files"][f"{folder}/"] = ("adapter_config.json + adapter_model.safetensors (PeftHost format, PEFT's "
                                           "conventions: keys 'base_model.model.<module path>.<tensor>', adapter name "
                                           "not in the keys; metadata {'format': 'pt'})")

    def finish(self):
        with open(self.path("meta.json"), "w") as fh:
            json.dump(jsonable(self.meta), fh, indent=2)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(self.dir) for f in fs)
        print(f"[{self.name}] ok, {size / 1024:.1f} KiB, {self.meta.get('adapter_effect_max_abs')}")


def full_config(defaults, kind, **kw):
    cfg = dict(COMMON_DEFAULTS, **defaults)
    cfg["base_model_name_or_path"] = f"../bases/{kind}"
    for k, v in kw.items():
        if k not in cfg:
            raise KeyError(k)
        cfg[k] = v
    return cfg


# ----------------------------------------------------------------------------------------------- BOTTLENECK
def bottleneck_size(cfg, d_read):
    if (cfg["adapter_size"] is None) == (cfg["reduction_factor"] is None):
        raise ValueError("exactly one of adapter_size / reduction_factor")
    if cfg["adapter_size"] is not None:
        return int(cfg["adapter_size"])
    return max(1, int(d_read // cfg["reduction_factor"]))


def bottleneck_tensors(model, cfg, gen, record):
    """{module path: {down_w, down_b, up_w, up_b}} drawn from gen (see the module docstring)."""
    out = {}
    for name, mod in model.named_modules():
        if not name or not matches(cfg, name) or not isinstance(mod, (torch.nn.Linear, Conv1D)):
            continue
        fin, fout = in_out(mod)
        d_read = fin if cfg["parallel"] else fout
        m = bottleneck_size(cfg, d_read)
        t = {"down_w": torch.randn(m, d_read, generator=gen) / d_read ** 0.5,
             "down_b": torch.randn(m, generator=gen) * 0.1,
             "up_w": torch.randn(fout, m, generator=gen) * 0.1,
             "up_b": torch.randn(fout, generator=gen) * 0.1}
        out[name] = t
        record.append({"module": name, "in": fin, "out": fout, "bottleneck": m,
                       "rule": "down.weight randn/sqrt(d_read), down.bias randn*0.1, up.weight randn*0.1, "
                               "up.bias randn*0.1"})
    if not out:
        raise ValueError("no module matched")
    return out


def bottleneck_keys(tensors):
    keys = {}
    for name, t in tensors.items():
        p = f"base_model.model.{name}"
        keys[f"{p}.bottleneck_down.weight"] = t["down_w"]
        keys[f"{p}.bottleneck_down.bias"] = t["down_b"]
        keys[f"{p}.bottleneck_up.weight"] = t["up_w"]
        keys[f"{p}.bottleneck_up.bias"] = t["up_b"]
    return keys


def attach_bottleneck(model, adapters):
    """adapters: list of (cfg, tensors); returns hook handles. Every term reads the base module's own h / x."""
    by_module = {}
    for cfg, tensors in adapters:
        for name, t in tensors.items():
            by_module.setdefault(name, []).append((cfg, t))
    handles = []
    mods = dict(model.named_modules())
    for name, items in by_module.items():
        def hook(mod, inp, h, items=items):
            x = inp[0]
            y = h
            for cfg, t in items:
                z = x if cfg["parallel"] else h
                a = ACTS[cfg["adapter_act"]](F.linear(z, t["down_w"], t["down_b"]))
                y = y + cfg["scaling"] * F.linear(a, t["up_w"], t["up_b"])
            return y
        handles.append(mods[name].register_forward_hook(hook))
    return handles


BOTTLENECK_NOTES = [
    "serial (Houlsby et al. 2019): y = h + scaling * up(act(down(dropout(h)))), h = module(x) -- the residual is part "
    "of the adapter; parallel (He et al. 2022): y = module(x) + scaling * up(act(down(dropout(x)))); dropout only in "
    "training", ACT_NOTE,
    "shapes: bottleneck_down.weight [m, d_read], .bias [m], bottleneck_up.weight [out, m], .bias [out]; d_read = "
    "out_features (serial) or in_features (parallel); m = adapter_size, or max(1, floor(d_read / reduction_factor)); "
    "GPT-2 Conv1D: in = weight.shape[0], out = weight.shape[1], adapter tensors in the Linear layout all the same",
    "not mergeable (the adapter is a nonlinear function of the activations): there is no logits_merged"]


def bottleneck_case(out, name, kind, cfg_kw, notes=()):
    c = FCase(out, name, kind)
    cfg = full_config(BOTTLENECK_DEFAULTS, kind, **cfg_kw)
    model = c.base()
    c.write_inputs()
    lb = c.logits("logits_base.safetensors", c.forward(model), "plain base model, eval")
    rec = []
    tensors = bottleneck_tensors(model, cfg, torch.Generator().manual_seed(SEED_VALUES), rec)
    c.write_adapter("adapter", cfg, bottleneck_keys(tensors))
    hs = attach_bottleneck(model, [(cfg, tensors)])
    la = c.logits("logits_adapter.safetensors", c.forward(model), "the formula applied by forward hooks, eval")
    for h in hs:
        h.remove()
    c.meta["adapter_effect_max_abs"] = (la - lb).abs().max().item()
    c.meta["adapter_values"] = {"seed": f"torch.Generator().manual_seed({SEED_VALUES})", "drawn": rec}
    c.meta["notes"] += BOTTLENECK_NOTES + list(notes)
    return c


CASES = {}


def case(fn):
    CASES[fn.__name__[5:]] = fn
    return fn


@case
def case_bottleneck_llama_serial(out):
    bottleneck_case(out, "bottleneck_llama_serial", "llama",
                    dict(task_type="CAUSAL_LM", target_modules=["o_proj", "down_proj"], adapter_size=8,
                         adapter_act="relu", adapter_dropout=0.1),
                    ["serial adapters (size 8, relu, scaling 1) after o_proj (32 -> 32) and down_proj (48 -> 32) -- "
                     "Houlsby's placement after the attention output and after the FFN; adapter_dropout 0.1 has no "
                     "effect in eval"]).finish()


@case
def case_bottleneck_llama_parallel(out):
    bottleneck_case(out, "bottleneck_llama_parallel", "llama",
                    dict(task_type="CAUSAL_LM", target_modules=["o_proj", "down_proj"], reduction_factor=4,
                         adapter_act="silu", parallel=True, scaling=4.0),
                    ["parallel adapters beside o_proj (reads its input, 32 -> m = 32/4 = 8 -> 32) and down_proj "
                     "(reads its 48-wide input: m = 48/4 = 12), silu, scaling 4 (He et al.'s s = 4)"]).finish()


@case
def case_bottleneck_gpt2_serial(out):
    bottleneck_case(out, "bottleneck_gpt2_serial", "gpt2",
                    dict(task_type="CAUSAL_LM", target_modules=["c_proj"], reduction_factor=4, adapter_act="gelu",
                         scaling=0.5),
                    ["GPT-2 Conv1D targets: 'c_proj' matches attn.c_proj (32 -> 32) and mlp.c_proj (64 -> 32) in "
                     "both layers; serial reads the 32-wide output: m = 8; gelu (erf), scaling 0.5"]).finish()


@case
def case_bottleneck_bert_parallel(out):
    bottleneck_case(out, "bottleneck_bert_parallel", "bert",
                    dict(target_modules=["output.dense"], adapter_size=4, adapter_act="tanh", parallel=True,
                         scaling=2.0),
                    ["'output.dense' matches attention.output.dense (32 -> 32) and output.dense (64 -> 32) of both "
                     "layers (suffix rule); parallel, size 4, tanh, scaling 2; task_type null (the base "
                     "BertForSequenceClassification's own classifier, untouched)"]).finish()


@case
def case_bottleneck_llama_two_adapters(out):
    c = FCase(out, "bottleneck_llama_two_adapters", "llama")
    cfg_d = full_config(BOTTLENECK_DEFAULTS, "llama", task_type="CAUSAL_LM", target_modules=["o_proj"], adapter_size=4,
                        adapter_act="tanh")
    cfg_o = full_config(BOTTLENECK_DEFAULTS, "llama", task_type="CAUSAL_LM", target_modules=["o_proj", "up_proj"],
                        adapter_size=4, adapter_act="gelu", parallel=True, scaling=2.0)
    model = c.base()
    c.write_inputs()
    lb = c.logits("logits_base.safetensors", c.forward(model), "plain base model, eval")
    gen, rec_d, rec_o = torch.Generator().manual_seed(SEED_VALUES), [], []
    td = bottleneck_tensors(model, cfg_d, gen, rec_d)
    to = bottleneck_tensors(model, cfg_o, gen, rec_o)
    c.write_adapter("adapter", cfg_d, bottleneck_keys(td))
    c.write_adapter("adapter/other", cfg_o, bottleneck_keys(to))
    res = {}
    for label, ads in (("default", [(cfg_d, td)]), ("other", [(cfg_o, to)]), ("both", [(cfg_d, td), (cfg_o, to)])):
        hs = attach_bottleneck(model, ads)
        res[label] = c.logits(f"logits_{label}.safetensors", c.forward(model),
                              {"default": "adapter 'default' (adapter/) alone", "other": "adapter 'other' "
                               "(adapter/other/) alone", "both": "both active: on o_proj y = h + serial term(h) + "
                               "parallel term(x)"}[label])
        for h in hs:
            h.remove()
    c.meta["adapter_effect_max_abs"] = (res["both"] - lb).abs().max().item()
    c.meta["adapter_values"] = {"seed": f"torch.Generator().manual_seed({SEED_VALUES}), 'default' drawn first, then "
                                        "'other' from the same generator", "default": rec_d, "other": rec_o}
    c.meta["files"]["adapter/other/"] = c.meta["files"].pop("adapter/other/") + " -- the second adapter, in the " \
                                                                               "subfolder named after it (PEFT's layout)"
    c.meta["notes"] += BOTTLENECK_NOTES + [
        "'default': serial on o_proj, size 4, tanh, scaling 1; 'other': parallel on o_proj and up_proj, size 4, gelu, "
        "scaling 2; both active: each term reads the base module's own h (serial) or x (parallel), the terms add up "
        "(order-independent)"]
    c.finish()


# ----------------------------------------------------------------------------------------------- BITFIT
def bitfit_targets(model, cfg, excluded_prefixes=()):
    """Modules with a bias PARAMETER matched by the config (all of them when target_modules is null)."""
    out = []
    for name, mod in model.named_modules():
        if not name or any(name == p or name.startswith(p + ".") for p in excluded_prefixes):
            continue
        b = mod._parameters.get("bias")
        if b is None:
            continue
        if cfg["target_modules"] is None or matches(cfg, name):
            out.append(name)
    if not out:
        raise ValueError("no module with a bias matched")
    return out


def bitfit_case(out, name, kind, cfg_kw, *, modules_to_save=None, notes=()):
    c = FCase(out, name, kind)
    cfg = full_config(BITFIT_DEFAULTS, kind, **cfg_kw)
    if modules_to_save:
        cfg["modules_to_save"] = modules_to_save
    model = c.base()
    c.write_inputs()
    lb = c.logits("logits_base.safetensors", c.forward(model), "plain base model, eval")
    mts = [n for n, _ in model.named_modules() if n and modules_to_save and
           any(n == m or n.endswith("." + m) for m in modules_to_save)]
    targets = bitfit_targets(model, cfg, mts)
    gen, rec, keys = torch.Generator().manual_seed(SEED_VALUES), [], {}
    mods = dict(model.named_modules())
    with torch.no_grad():
        for n in targets:
            b = mods[n].bias
            nb = b + torch.randn(b.shape, generator=gen) * 0.1
            keys[f"base_model.model.{n}.bias"] = nb.clone()
            b.copy_(nb)
            rec.append({"module": n, "type": type(mods[n]).__name__, "shape": list(b.shape), "rule": "b + randn*0.1"})
        for n in mts:   # modules_to_save: the whole trained copy, saved under the module's own keys
            for pn, p in mods[n].named_parameters():
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                keys[f"base_model.model.{n}.{pn}"] = p.detach().clone()
                rec.append({"module": n, "param": pn, "rule": "modules_to_save copy: w + randn*0.1"})
    c.write_adapter("adapter", cfg, keys)
    la = c.logits("logits_adapter.safetensors", c.forward(model),
                  "the base with the targeted biases replaced by the adapter's (= the merged model), eval")
    c.meta["adapter_effect_max_abs"] = (la - lb).abs().max().item()
    c.meta["targets"] = targets
    c.meta["adapter_values"] = {"seed": f"torch.Generator().manual_seed({SEED_VALUES})", "drawn": rec}
    c.meta["notes"] += [
        "BITFIT: the adapter holds the full trained bias of each targeted module (not a difference), saved under the "
        "module's own key base_model.model.<module>.bias; applying it = using that bias instead of the base's, so the "
        "unmerged forward, the merged model and logits_adapter are the same numbers (no logits_merged file); "
        "disabling gives the base exactly (logits_base)",
        "targets: modules with a `bias` PARAMETER (Linear, Conv1D, LayerNorm); buffers named bias (GPT-2's "
        "attn.bias causal mask) are not bias terms; target_modules null = every such module"] + list(notes)
    return c


@case
def case_bitfit_bert_all(out):
    bitfit_case(out, "bitfit_bert_all", "bert", dict(), notes=[
        "target_modules null, task_type null: every bias of the model: query/key/value, attention.output.dense, "
        "intermediate.dense, output.dense, all LayerNorms (embeddings too), pooler.dense, classifier"]).finish()


@case
def case_bitfit_bert_seq_cls_subset(out):
    bitfit_case(out, "bitfit_bert_seq_cls_subset", "bert", dict(task_type="SEQ_CLS", target_modules=["query", "value",
                                                                                                    "LayerNorm"]),
                modules_to_save=["classifier", "score"], notes=[
        "task_type SEQ_CLS: modules_to_save ['classifier', 'score'] as PEFT adds them ('score' matches nothing in "
        "BERT); the classifier copy (weight and bias, + randn*0.1) is saved as base_model.model.classifier.weight / "
        ".bias and is never a BitFit target; BitFit on query, value and LayerNorm biases only"]).finish()


@case
def case_bitfit_gpt2(out):
    bitfit_case(out, "bitfit_gpt2", "gpt2", dict(task_type="CAUSAL_LM", target_modules=["c_attn", "c_proj", "ln_1"],
                                                 layers_to_transform=[1]), notes=[
        "target_modules with layers_to_transform=[1] (PEFT's rule: the layer index after a '.<name>.<digits>.' in the "
        "module path): h.1.attn.c_attn, h.1.attn.c_proj, h.1.mlp.c_proj, h.1.ln_1 (Conv1D and LayerNorm biases)"]).finish()


@case
def case_bitfit_gpt2_all(out):
    bitfit_case(out, "bitfit_gpt2_all", "gpt2", dict(task_type="CAUSAL_LM"), notes=[
        "target_modules null: c_attn, attn.c_proj, c_fc, mlp.c_proj, ln_1, ln_2 of each layer and ln_f; NOT the "
        "attention's causal-mask buffer attn.bias; lm_head and the embeddings have no bias"]).finish()


# ----------------------------------------------------------------------------------------------- training
TRAIN_RULE = ("plain loop: torch.optim.AdamW(adapter parameters, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01); "
              "each step: loss = model(input_ids=rows, labels=rows).loss, backward, record loss.item(), opt.step(), "
              "opt.zero_grad(set_to_none=True); model in train mode (the tiny Llama bases have no dropout)")


def data_rows():
    return torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed(SEED_DATA))


def write_training(c, losses, after, lr, steps):
    with open(c.path("losses.json"), "w") as fh:
        json.dump({"losses": losses, "loss_after_training": after}, fh, indent=1)
    c.meta["files"]["losses.json"] = ("losses: the loss at each step before its update; loss_after_training: after "
                                      "the last update (eval)")
    c.meta["files"]["data.json"] = "training rows: input_ids [4, 12] (labels = input_ids)"
    c.meta["training"] = {"rule": TRAIN_RULE, "lr": lr, "steps": steps, "losses": losses, "loss_after_training": after,
                          "rows_seed": f"torch.randint(0, 64, (4, 12), generator=torch.Generator().manual_seed({SEED_DATA}))"}
    print(f"[{c.name}] losses {[round(x, 5) for x in losses]} -> {after:.5f}")


@case
def case_train_bottleneck_llama(out):
    c = FCase(out, "train_bottleneck_llama", "llama")
    cfg = full_config(BOTTLENECK_DEFAULTS, "llama", task_type="CAUSAL_LM", target_modules=["o_proj", "down_proj"],
                      adapter_size=8, adapter_act="relu")
    model = c.base()
    for p in model.parameters():
        p.requires_grad_(False)
    c.write_inputs()
    rec = []
    tensors = bottleneck_tensors(model, cfg, torch.Generator().manual_seed(SEED_VALUES), rec)
    c.write_adapter("initial_adapter", cfg, bottleneck_keys(tensors))
    params = []
    for t in tensors.values():
        for k in ("down_w", "down_b", "up_w", "up_b"):
            t[k] = t[k].clone().requires_grad_(True)
            params.append(t[k])
    rows = data_rows()
    with open(c.path("data.json"), "w") as fh:
        json.dump({"input_ids": rows.tolist()}, fh)
    hs = attach_bottleneck(model, [(cfg, tensors)])
    model.train()
    opt = torch.optim.AdamW(params, lr=5e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(5):
        loss = model(input_ids=rows, labels=rows).loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        after = model(input_ids=rows, labels=rows).loss.item()
    c.logits("logits_final.safetensors", c.forward(model), "the trained adapter on inputs.json, eval")
    for h in hs:
        h.remove()
    c.write_adapter("final_adapter", cfg, bottleneck_keys(tensors))
    write_training(c, losses, after, 5e-3, 5)
    c.meta["adapter_values"] = {"seed": f"torch.Generator().manual_seed({SEED_VALUES})", "drawn": rec,
                                "note": "initial_adapter/ holds these values (a trained-looking start: an up "
                                        "projection of zeros would leave the down projection without gradient)"}
    c.meta["notes"] += BOTTLENECK_NOTES + ["serial on o_proj and down_proj, size 8, relu, scaling 1; the Llama base "
                                           "has no dropout, so train mode changes nothing but the adapter's "
                                           "adapter_dropout (0 here)"]
    c.finish()


@case
def case_train_bitfit_llama_bias(out):
    c = FCase(out, "train_bitfit_llama_bias", "llama_bias")
    cfg = full_config(BITFIT_DEFAULTS, "llama_bias", task_type="CAUSAL_LM")
    model = c.base()
    c.write_inputs()
    targets = bitfit_targets(model, cfg)
    mods = dict(model.named_modules())
    for p in model.parameters():
        p.requires_grad_(False)
    c.write_adapter("initial_adapter", cfg, {f"base_model.model.{n}.bias": mods[n].bias.detach().clone()
                                             for n in targets})
    params = []
    for n in targets:
        mods[n].bias.requires_grad_(True)
        params.append(mods[n].bias)
    rows = data_rows()
    with open(c.path("data.json"), "w") as fh:
        json.dump({"input_ids": rows.tolist()}, fh)
    model.train()
    opt = torch.optim.AdamW(params, lr=5e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    for _ in range(5):
        loss = model(input_ids=rows, labels=rows).loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        after = model(input_ids=rows, labels=rows).loss.item()
    c.logits("logits_final.safetensors", c.forward(model), "the trained biases on inputs.json, eval")
    c.write_adapter("final_adapter", cfg, {f"base_model.model.{n}.bias": mods[n].bias.detach().clone()
                                           for n in targets})
    write_training(c, losses, after, 5e-3, 5)
    c.meta["targets"] = targets
    c.meta["notes"] += [
        "BITFIT on every bias of the Llama-with-biases base (target_modules null: q/k/v/o_proj and gate/up/down_proj "
        "of both layers; RMSNorm has no bias), starting from the base biases themselves (initial_adapter/ = copies "
        "of the base biases: BitFit's natural start)",
        "the Llama base has no dropout, so train mode is deterministic",
        "AdamW's weight decay applies to the bias values themselves (decoupled: b -= lr*0.01*b each step)"]
    c.finish()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("cases", nargs="*", help=f"subset of: {', '.join(CASES)}")
    a = ap.parse_args()
    torch.set_num_threads(1)
    failed = {}
    for name in a.cases or CASES:
        try:
            CASES[name](a.out)
        except Exception as e:  # record and continue: no case may be skipped silently
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
    if failed:
        print("FAILED:", json.dumps(failed, indent=2))
        sys.exit(1)


if __name__ == "__main__":
    main()
