"""Reference-case generator for PeftHost: runs the real Hugging Face PEFT on tiny random models.

What it does
    Writes small, self-contained cases into tests/fixtures/peft/<case>/ (relative to the repository
    root), one per PEFT method/option: a tiny transformers base model folder (`base/`), the adapter
    folder written by PEFT's `save_pretrained` (`adapter/`), forward inputs (`inputs.json`), reference
    logits as safetensors files (key `logits`) and a `meta.json` that records versions, seeds, the exact
    config passed, the saved adapter_config.json, the adapter key/shape layout and what every file holds.
    Every case is also re-checked by loading base/ + adapter/ back from disk the way a user would
    (`PeftModel.from_pretrained`) and comparing with the logits written (`reload_max_abs_diff`).

How to run (the lab is described in /work/shared/tools/peft-lab/README.md)
    LAB=/work/lab MIRROR=<mirrors> bash /work/shared/tools/peft-lab/setup.sh      # once, as root
    source /work/lab/env.sh
    /usr/bin/python3 tools/peft-reference/make_cases.py [--out tests/fixtures/peft] [case ...]
    With no case names every case is (re)generated; the script is deterministic (fixed seeds,
    PYTHONHASHSEED=0 from env.sh keeps the order of target_modules in saved configs stable).

Versions (recorded in each meta.json; read at run time)
    peft 0.13.2 (tag v0.13.2), transformers 4.44.0.dev0 (upstream commit 50c3ba88, the v4.44.0 branch
    point), accelerate 0.34.2, huggingface_hub 0.24.7, Debian 12 python3-torch 1.13.1 (CPU, float32,
    eager attention), Debian /usr/bin/python3 3.11. safetensors files are written by the lab's
    pure-Python stand-in of `safetensors` (standard format, key order/padding may differ from the
    official writer byte for byte).

Perturbation ("trained-looking" adapters)
    Right after get_peft_model (seed torch.manual_seed(100) just before it), every adapter parameter
    that PEFT initialises to all zeros gets randn(shape)*0.1, every one initialised to all ones gets
    1 + randn(shape)*0.1, and DoRA magnitudes are multiplied by (1 + randn*0.1); extra, case-specific
    perturbations (modules_to_save copies, lora_only biases) are listed in meta.json. Random numbers come
    from torch.Generator().manual_seed(101), parameters visited in named_parameters() order.
    Each meta.json lists the exact parameters touched and the rule used.

This is our own code (not part of PEFT). Nothing in the build or CI runs it.
"""
import argparse
import copy
import enum
import json
import os
import shutil
import struct
import sys
import traceback

import torch

import peft
import transformers
from peft import (AdaLoraConfig, IA3Config, LoraConfig, PeftModel, PrefixTuningConfig, PromptEncoderConfig,
                  PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model)
from safetensors.torch import save_file
from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2LMHeadModel, LlamaConfig,
                          LlamaForCausalLM)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "tests", "fixtures", "peft")

SEED_BASE = 0          # torch.manual_seed right before the base model is constructed
SEED_INPUTS = 1        # torch.Generator seed for input ids
SEED_PEFT = 100        # torch.manual_seed right before get_peft_model / add_adapter
SEED_PERTURB = 101     # torch.Generator seed for the perturbation

PERTURB_RULE = ("after get_peft_model: every adapter parameter whose PEFT initial value is all zeros := "
                "randn(shape)*0.1; all ones := 1 + randn(shape)*0.1; DoRA lora_magnitude_vector := "
                "m * (1 + randn(shape)*0.1); randn from torch.Generator().manual_seed(101), parameters in "
                "named_parameters() order (only those listed in perturbed_parameters)")

LLAMA_KW = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
                initializer_range=0.2, tie_word_embeddings=False)
GPT2_KW = dict(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=32, n_inner=64, initializer_range=0.2)
BERT_KW = dict(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
               max_position_embeddings=32, type_vocab_size=2, num_labels=2, initializer_range=0.2)


# ----------------------------------------------------------------------------------------------- helpers
def jsonable(o):
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (set, frozenset)):
        return sorted(jsonable(v) for v in o)
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, enum.Enum):
        return o.value
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, (str, int, float, bool)) or o is None:
        return o
    return repr(o)


def config_passed(cfg):
    """The PEFT config exactly as passed (before get_peft_model fills in anything)."""
    return jsonable(copy.deepcopy(cfg).to_dict())


def versions():
    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "python": sys.version.split()[0],
        "accelerate": __import__("accelerate").__version__,
        "huggingface_hub": __import__("huggingface_hub").__version__,
        "safetensors": "0.4.5 (pure-Python stand-in from the peft-lab shims)",
    }


SOURCES = {
    "peft": {"repo": "huggingface/peft", "tag": "v0.13.2", "commit": "431c0e2d5ca56fa512dc4c96876c4145bb538f62"},
    "transformers": {"repo": "huggingface/transformers (via the fork F4biian/transformers-v4.47.1-and-internal-states,"
                             " upstream history unchanged)",
                     "commit": "50c3ba889a7f9c30e78211e32dffe38e08ecc752",
                     "what": "v4.44.0 branch point, __version__ 4.44.0.dev0"},
    "accelerate": {"repo": "huggingface/accelerate", "tag": "v0.34.2"},
    "huggingface_hub": {"repo": "huggingface/huggingface_hub", "tag": "v0.24.7"},
    "torch": "Debian 12 python3-torch 1.13.1+dfsg (torch.__version__ 1.13.0a0), CPU, float32",
    "setup": "/work/shared/tools/peft-lab/setup.sh (peft-lab README)",
}


def st_layout(path):
    """{key: [dtype, shape]} of a safetensors file plus its metadata, read from the header."""
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        header = json.loads(fh.read(n).decode("utf-8"))
    meta = header.pop("__metadata__", None)
    return {"metadata": meta, "tensors": {k: [v["dtype"], v["shape"]] for k, v in sorted(header.items())}}


def save_logits(path, t):
    save_file({"logits": t.detach().float().contiguous()}, path)
    return list(t.shape)


def randint_ids(batch, seq, vocab=64, seed=SEED_INPUTS):
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


def perturb(model, gen, record, names_filter=None):
    """Perturb zero/one-initialised adapter params and DoRA magnitudes (see PERTURB_RULE)."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            if names_filter is not None and not names_filter(n):
                continue
            is_adapter = any(s in n for s in ("lora_", "ia3_", "prompt_encoder"))
            if not is_adapter:
                continue
            if "lora_magnitude_vector" in n:
                p.mul_(1 + torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "m * (1 + randn*0.1)"})
            elif torch.all(p == 0):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "0 -> randn*0.1"})
            elif torch.all(p == 1):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * 0.1)
                record.append({"name": n, "rule": "1 -> 1 + randn*0.1"})


def forward_logits(model, inputs):
    with torch.no_grad():
        return model(**{k: torch.tensor(v) for k, v in inputs.items()}).logits


class Case:
    def __init__(self, out_root, name, model_class):
        self.name = name
        self.dir = os.path.join(out_root, name)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir)
        self.meta = {"case": name, "versions": versions(), "sources": SOURCES,
                     "generator": "tools/peft-reference/make_cases.py", "model_class": model_class,
                     "files": {}, "logits_shapes": {}, "notes": []}
        self.model_class = model_class

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def build_base(self, cls, cfg_cls, kw):
        torch.manual_seed(SEED_BASE)
        cfg = cfg_cls(**kw, attn_implementation="eager")
        model = cls(cfg).eval()
        model.save_pretrained(self.path("base"), safe_serialization=True)
        model.name_or_path = model.config._name_or_path = "base"   # -> base_model_name_or_path in adapter_config
        self.meta["base"] = {"config_kwargs": kw, "attn_implementation": "eager",
                             "seed": f"torch.manual_seed({SEED_BASE}) immediately before {cls.__name__}(config)",
                             "base_model_name_or_path": "base (folder name, relative to the case folder)"}
        self.meta["files"]["base/"] = ("transformers save_pretrained folder of the base model "
                                       "(config.json, model.safetensors[, generation_config.json])")
        self.base_cls = cls
        return model

    def write_inputs(self, inputs, note=None):
        with open(self.path("inputs.json"), "w") as fh:
            json.dump(inputs, fh)
        self.inputs = inputs
        self.meta["inputs"] = inputs
        self.meta["files"]["inputs.json"] = "forward inputs" + (f" ({note})" if note else "")

    def logits(self, fname, t, what):
        self.meta["logits_shapes"][fname] = save_logits(self.path(fname), t)
        self.meta["files"][fname] = f"key 'logits', float32, shape {list(t.shape)}: {what}"
        return t

    def save_adapter(self, model, **kw):
        cwd = os.getcwd()
        os.chdir(self.dir)   # so PEFT finds base/config.json for its vocab-resize check
        try:
            model.save_pretrained("adapter", **kw)
        finally:
            os.chdir(cwd)
        lay, cfgs = {}, {}
        for root, _, files in os.walk(self.path("adapter")):
            rel = os.path.relpath(root, self.path("adapter"))
            for f in sorted(files):
                relf = f if rel == "." else f"{rel}/{f}"
                if f.endswith(".safetensors"):
                    lay[relf] = st_layout(os.path.join(root, f))
                if f == "adapter_config.json":
                    cfgs[relf] = json.load(open(os.path.join(root, f)))
        self.meta["adapter_safetensors_layout"] = lay
        self.meta["adapter_config_saved"] = cfgs
        self.meta["files"]["adapter/"] = ("PEFT save_pretrained output: adapter_config.json, adapter_model.safetensors "
                                          "(adapter name stripped from keys), README.md model card (irrelevant)"
                                          + ("; non-default adapters in subfolders named after the adapter"
                                             if any("/" in k for k in cfgs) else ""))

    def reload_check(self, ref, inputs=None, adapters=(), active=None, **fwd):
        """Load base/ + adapter/ from disk like a user and compare with ref logits."""
        base = self.base_cls.from_pretrained(self.path("base"), attn_implementation="eager").eval()
        m = PeftModel.from_pretrained(base, self.path("adapter")).eval()
        for a in adapters:
            m.load_adapter(self.path("adapter", a), adapter_name=a)
        if active:
            m.set_adapter(active)
        inputs = inputs or self.inputs
        with torch.no_grad():
            out = m(**{k: torch.tensor(v) for k, v in inputs.items()}, **fwd).logits
        d = (out - ref).abs().max().item()
        self.meta.setdefault("reload_max_abs_diff", {})[active or "default"] = d
        return m

    def finish(self):
        with open(self.path("meta.json"), "w") as fh:
            json.dump(jsonable(self.meta), fh, indent=2)
        size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(self.dir) for f in fs)
        print(f"[{self.name}] ok, {size / 1024:.1f} KiB, shapes {self.meta['logits_shapes']}, "
              f"reload diff {self.meta.get('reload_max_abs_diff')}")


def lm_inputs(batch=2, seq=6):
    return {"input_ids": randint_ids(batch, seq).tolist()}


def standard_lora_case(out, name, cfg, *, model="llama", base_kw=None, merge=True, notes=(), extra_perturb=None):
    """Base + one adapter: logits_base, logits_adapter, logits_merged (if merge)."""
    cls, ccls, kw = {"llama": (LlamaForCausalLM, LlamaConfig, LLAMA_KW),
                     "gpt2": (GPT2LMHeadModel, GPT2Config, GPT2_KW)}[model]
    c = Case(out, name, cls.__name__)
    base = c.build_base(cls, ccls, base_kw or kw)
    c.write_inputs(lm_inputs())
    c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    c.meta["peft_config_passed"] = config_passed(cfg)
    c.meta["peft_config_class"] = type(cfg).__name__
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg)
    rec = []
    gen = torch.Generator().manual_seed(SEED_PERTURB)
    perturb(pm, gen, rec)
    if extra_perturb:
        extra_perturb(pm, gen, rec)
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS, "get_peft_model": SEED_PEFT,
                       "perturbation": SEED_PERTURB}
    c.meta["perturbation"] = PERTURB_RULE
    c.meta["perturbed_parameters"] = rec
    pm.eval()
    c.save_adapter(pm)
    ref = c.logits("logits_adapter.safetensors", forward_logits(pm, c.inputs),
                   "PeftModel forward, adapter active, eval, unmerged")
    c.reload_check(ref)
    if merge:
        merged = pm.merge_and_unload()
        ml = c.logits("logits_merged.safetensors", forward_logits(merged, c.inputs),
                      "after merge_and_unload(), plain transformers model, eval")
        c.meta["merged_vs_unmerged_max_abs_diff"] = (ml - ref).abs().max().item()
    c.meta["notes"].extend(notes)
    c.meta["saved_bias_keys"] = [k for lay in c.meta["adapter_safetensors_layout"].values()
                                 for k in lay["tensors"] if k.endswith("bias")]
    return c


# ----------------------------------------------------------------------------------------------- cases
CASES = {}


def case(fn):
    CASES[fn.__name__[5:]] = fn
    return fn


@case
def case_lora_rslora_llama(out):
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, use_rslora=True,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    c = standard_lora_case(out, "lora_rslora_llama", cfg,
                           notes=["use_rslora: scaling = lora_alpha / sqrt(r) = 8/2 = 4 (not alpha/r = 2)"])
    c.finish()


@case
def case_lora_dora_llama(out):
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, use_dora=True, target_modules=["q_proj", "v_proj"])
    c = standard_lora_case(out, "lora_dora_llama", cfg, notes=[
        "DoRA: lora_magnitude_vector is initialised by PEFT to the row-wise L2 norm of W (+ scaling*B@A, B=0 at init); "
        "it was perturbed afterwards (m * (1 + randn*0.1)) together with lora_B, so m no longer equals ||W + s*BA||.",
        "saved key of the magnitude: ...lora_magnitude_vector (no '.weight' suffix, PEFT strips it)"])
    c.finish()


@case
def case_lora_gpt2_conv1d(out):
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, fan_in_fan_out=True,
                     target_modules=["c_attn", "c_proj"])
    c = standard_lora_case(out, "lora_gpt2_conv1d", cfg, model="gpt2", notes=[
        "GPT-2 Conv1D stores weight as [in, out]; LoRA A/B keep the nn.Linear layout (A [r, in], B [out, r]); "
        "fan_in_fan_out=True makes merge add (B@A).T to the Conv1D weight",
        "c_proj matches both attn.c_proj and mlp.c_proj"])
    c.finish()


@case
def case_lora_embedding_llama(out):
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"])
    c = standard_lora_case(out, "lora_embedding_llama", cfg, notes=[
        "Embedding LoRA: PEFT initialises lora_embedding_A to zeros and lora_embedding_B to normal, so here "
        "lora_embedding_A is the perturbed one; the parameters are plain tensors: lora_embedding_A [r, vocab], "
        "lora_embedding_B [hidden, r]; delta(ids) = embedding(ids, A.T) @ B.T * scaling",
        "because 'embed_tokens' is in target_modules, save_pretrained (save_embedding_layers='auto') ALSO saves the "
        "full base embedding weight (base_model.model.model.embed_tokens.base_layer.weight) into the adapter file"])
    c.finish()


ALL_LINEAR_LAYERS_NOTE = (
    "PEFT 0.13.2 refuses target_modules='all-linear' together with layers_to_transform (LoraConfig.__post_init__: "
    "'`layers_to_transform` cannot be used when `target_modules` is a str.'), so the requested combination is split "
    "into two cases: lora_all_linear_bias (all-linear, no layers_to_transform) and lora_layers_to_transform (the "
    "same seven linear module names listed explicitly, layers_to_transform=[1])")
BIAS_NOTES = [
    "base Llama built with attention_bias=True, mlp_bias=True so that bias='lora_only' has biases to save",
    "PEFT 0.13.2 bias='lora_only' SAVES NO BIASES: get_peft_model_state_dict looks for '<module>.bias' next to "
    "'<module>.lora_A...', but the wrapped layer's bias is '<module>.base_layer.bias', so nothing matches (see "
    "saved_bias_keys = []). A first run that perturbed those biases (as training would) gave reload differences of "
    "~1 in the logits, so the biases are left at their base values here: logits_adapter equals what a user gets "
    "from base/ + adapter/. A reimplementation should accept bias='lora_only' and use the base biases",
    "rank_pattern/alpha_pattern keys are matched as regex '.*\\.<key>$' against the module name; "
    "q_proj gets r=2 (scaling alpha/r = 8/2 = 4), v_proj gets alpha=16 (scaling 16/4 = 4), others 8/4 = 2",
    "lora_dropout=0.1 has no effect in eval mode",
    ALL_LINEAR_LAYERS_NOTE]


@case
def case_lora_all_linear_bias(out):
    kw = dict(LLAMA_KW, attention_bias=True, mlp_bias=True)
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules="all-linear", bias="lora_only",
                     lora_dropout=0.1, rank_pattern={"q_proj": 2}, alpha_pattern={"v_proj": 16})
    c = standard_lora_case(out, "lora_all_linear_bias", cfg, base_kw=kw, notes=BIAS_NOTES + [
        "all-linear = every nn.Linear except the output head (lm_head); PEFT expands it at get_peft_model time, the "
        "saved adapter_config.json lists the concrete names"])
    c.finish()


@case
def case_lora_layers_to_transform(out):
    kw = dict(LLAMA_KW, attention_bias=True, mlp_bias=True)
    cfg = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8,
                     target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                     bias="lora_only", lora_dropout=0.1, rank_pattern={"q_proj": 2}, alpha_pattern={"v_proj": 16},
                     layers_to_transform=[1])
    c = standard_lora_case(out, "lora_layers_to_transform", cfg, base_kw=kw, 
                           notes=BIAS_NOTES + [
        "layers_to_transform=[1] with layers_pattern=None: PEFT matches the layer index after one of its common "
        "layer names ('layers', 'h', 'block', 'blocks', 'layer') -> only model.layers.1.* is adapted"])
    c.finish()


@case
def case_lora_modules_to_save_bert(out):
    c = Case(out, "lora_modules_to_save_bert", "BertForSequenceClassification")
    base = c.build_base(BertForSequenceClassification, BertConfig, BERT_KW)
    ids = randint_ids(2, 7)
    c.write_inputs({"input_ids": ids.tolist(),
                    "attention_mask": [[1] * 7, [1] * 5 + [0] * 2],
                    "token_type_ids": [[0] * 4 + [1] * 3, [0] * 3 + [1] * 4]},
                   "second row padded (2 trailing zeros in attention_mask); token_type_ids mixed 0/1")
    c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"])
    c.meta["peft_config_passed"] = config_passed(cfg)
    c.meta["peft_config_class"] = "LoraConfig"
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg)
    rec = []
    gen = torch.Generator().manual_seed(SEED_PERTURB)
    perturb(pm, gen, rec)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "modules_to_save.default" in n:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                rec.append({"name": n, "rule": "w + randn*0.1 (modules_to_save copy of classifier)"})
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS, "get_peft_model": SEED_PEFT, "perturbation": SEED_PERTURB}
    c.meta["perturbation"] = PERTURB_RULE + "; plus the classifier copy in modules_to_save: w + randn*0.1"
    c.meta["perturbed_parameters"] = rec
    pm.eval()
    c.save_adapter(pm)
    ref = c.logits("logits_adapter.safetensors", forward_logits(pm, c.inputs),
                   "PeftModelForSequenceClassification forward, adapter active, eval, unmerged")
    c.reload_check(ref)
    merged = pm.merge_and_unload()
    ml = c.logits("logits_merged.safetensors", forward_logits(merged, c.inputs),
                  "after merge_and_unload() (classifier replaced by its modules_to_save copy)")
    c.meta["merged_vs_unmerged_max_abs_diff"] = (ml - ref).abs().max().item()
    c.meta["notes"] += [
        "task_type SEQ_CLS makes PEFT add modules_to_save=['classifier','score'] automatically ('score' does not exist "
        "in BERT); the saved adapter_config.json lists both; the trained copy is saved as "
        "base_model.model.classifier.weight/.bias ('modules_to_save.default' stripped) and replaces the base classifier",
        "the pooler and the base classifier (original_module) are not in the adapter file"]
    c.finish()


@case
def case_lora_multi_adapter(out):
    c = Case(out, "lora_multi_adapter", "LlamaForCausalLM")
    base = c.build_base(LlamaForCausalLM, LlamaConfig, LLAMA_KW)
    c.write_inputs(lm_inputs())
    c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    cfg_d = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    cfg_o = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=16, target_modules=["v_proj", "o_proj", "up_proj"])
    c.meta["peft_config_passed"] = {"default": config_passed(cfg_d), "other": config_passed(cfg_o)}
    c.meta["peft_config_class"] = "LoraConfig"
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg_d)
    pm.add_adapter("other", cfg_o)
    rec = []
    perturb(pm, torch.Generator().manual_seed(SEED_PERTURB), rec)
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS,
                       "get_peft_model": f"torch.manual_seed({SEED_PEFT}) before get_peft_model(default), then "
                                         "add_adapter('other') without reseeding", "perturbation": SEED_PERTURB}
    c.meta["perturbation"] = PERTURB_RULE
    c.meta["perturbed_parameters"] = rec
    pm.eval()
    c.save_adapter(pm)   # both adapters: default at the root, 'other' in adapter/other/
    ld = c.logits("logits_default.safetensors", forward_logits(pm, c.inputs), "active adapter 'default'")
    pm.set_adapter("other")
    lo = c.logits("logits_other.safetensors", forward_logits(pm, c.inputs), "active adapter 'other'")
    c.reload_check(ld, adapters=["other"], active="default")
    c.reload_check(lo, adapters=["other"], active="other")
    combos = {}
    for ctype, aname, fname in (("linear", "combo", "logits_combo.safetensors"),
                                ("svd", "combo_svd", "logits_combo_svd.safetensors")):
        torch.manual_seed(SEED_PEFT)
        pm.add_weighted_adapter(["default", "other"], [0.7, 0.3], aname, combination_type=ctype)
        pm.set_adapter(aname)
        pm.eval()
        c.logits(fname, forward_logits(pm, c.inputs),
                 f"add_weighted_adapter(['default','other'], [0.7, 0.3], '{aname}', combination_type='{ctype}'), "
                 f"'{aname}' active")
        sd = peft.get_peft_model_state_dict(pm, adapter_name=aname, save_embedding_layers=False)
        combos.update({f"{aname}/{k}": v.detach().contiguous() for k, v in sd.items()})
        c.meta.setdefault("combo_configs", {})[aname] = jsonable(pm.peft_config[aname].to_dict())
    save_file(combos, c.path("combo_weights.safetensors"))
    c.meta["files"]["combo_weights.safetensors"] = (
        "the LoRA A/B tensors PEFT computed for 'combo' and 'combo_svd' (keys '<adapter>/<key as saved>'); "
        "for debugging only -- SVD factors are not unique, compare B@A or the logits")
    c.meta["files"]["adapter/"] += "; this folder holds only 'default' and 'other' (saved before the combos were made)"
    c.meta["notes"] += [
        "both adapters have r=4 (linear needs equal ranks); 'other' has alpha 16, targets v_proj,o_proj,up_proj",
        "the combined adapter gets r=new_rank and lora_alpha=new_rank (scaling 1), target_modules = union",
        "linear: per module, A = sum_i sqrt(w_i*scaling_i)*A_i and B = sum_i sqrt(w_i*scaling_i)*B_i "
        "over the adapters present in that module (so cross terms appear where both adapters target the module, "
        "here v_proj); see peft/tuners/lora/model.py _generalized_task_arithmetic_weighted_adapter",
        "svd: delta = sum_i w_i*scaling_i*B_i@A_i over the adapters present in the module, then U,S,Vh = "
        "torch.linalg.svd(delta, full_matrices=True); B = U[:, :r] @ diag(S[:r]), A = Vh[:r] (r = max rank = 4, no "
        "clamp) -- see _svd_generalized_task_arithmetic_weighted_adapter",
        "no logits_adapter/logits_merged here: logits_default is the 'default' adapter active"]
    c.finish()


@case
def case_ia3_llama(out):
    cfg = IA3Config(task_type=TaskType.CAUSAL_LM, target_modules=["k_proj", "v_proj", "down_proj"],
                    feedforward_modules=["down_proj"])
    c = standard_lora_case(out, "ia3_llama", cfg, notes=[
        "IA3: ia3_l initialised to ones (perturbed to 1+randn*0.1); for feedforward modules (down_proj) the vector "
        "has shape [1, in_features] and scales the INPUT; otherwise shape [out_features, 1] and scales the OUTPUT",
        "saved keys end in ia3_l (no '.weight')"])
    c.finish()


@case
def case_adalora_llama(out):
    cfg = AdaLoraConfig(task_type=TaskType.CAUSAL_LM, init_r=4, target_r=2, lora_alpha=8, total_step=100,
                        target_modules=["q_proj", "v_proj"])
    def ab_perturb(pm, gen, rec):
        # PEFT's N(0, 0.02) init of A and B makes the adapter's effect ~1e-2 on the logits: give them trained-size values
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if ".lora_A." in n or ".lora_B." in n:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
                    rec.append({"name": n, "rule": "randn*0.3 (replaces PEFT's normal(0, 0.02) init)"})

    c = standard_lora_case(out, "adalora_llama", cfg, extra_perturb=ab_perturb, notes=[
        "the saved config also carries r=8 (LoraConfig's default, unused by AdaLoRA: the rank is init_r)",
        "saved keys: lora_A [r, in], lora_B [out, r], lora_E [r, 1] (plain parameters: no '.weight'); ranknum is not saved",
        "AdaLoRA: no training and no update_and_allocate, so every module keeps rank init_r=4 and the saved "
        "config's rank_pattern is null; lora_E (zeros at init) := randn*0.1, then lora_A/lora_B := randn*0.3 (same "
        "generator, after lora_E) because PEFT's normal(0, 0.02) init leaves the adapter nearly invisible",
        "forward: y = base(x) + (dropout(x) @ (A*E).T @ B.T) * scaling / (ranknum + 1e-5) with scaling = lora_alpha "
        "(=8, NOT alpha/r) and ranknum = r = 4 (a buffer-like parameter, not saved)",
        "logits_merged: merge_and_unload works for AdaLoRA too (same delta: B@(A*E)*scaling/(ranknum+1e-5))"])
    c.finish()


def prompt_case(out, name, cfg, notes):
    c = Case(out, name, "LlamaForCausalLM")
    base = c.build_base(LlamaForCausalLM, LlamaConfig, LLAMA_KW)
    c.write_inputs(lm_inputs())
    c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    c.meta["peft_config_passed"] = config_passed(cfg)
    c.meta["peft_config_class"] = type(cfg).__name__
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg)
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS, "get_peft_model": SEED_PEFT}
    c.meta["perturbation"] = "none: prompt-learning parameters are randomly initialised by PEFT (nothing is zero/one)"
    c.meta["perturbed_parameters"] = []
    c.meta["peft_config_after_get_peft_model"] = jsonable(pm.peft_config["default"].to_dict())
    pm.eval()
    c.save_adapter(pm)
    ref = c.logits("logits_adapter.safetensors", forward_logits(pm, c.inputs),
                   "PeftModelForCausalLM forward (virtual tokens added by PEFT), eval")
    c.reload_check(ref)
    c.meta["notes"] += notes + [f"logits shape returned by PEFT: {list(ref.shape)} for input_ids "
                                f"{list(torch.tensor(c.inputs['input_ids']).shape)}"]
    c.finish()


@case
def case_prompt_tuning_llama(out):
    cfg = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4,
                             prompt_tuning_init=PromptTuningInit.RANDOM)
    prompt_case(out, "prompt_tuning_llama", cfg, [
        "prompt tuning: inputs_embeds = cat(prompt_embeddings[4, hidden], embed(input_ids)) per row; an "
        "attention_mask (if given) is prefixed with ones; logits include the 4 virtual positions "
        "(shape [batch, 4 + seq, vocab]); position ids simply run 0..4+seq-1",
        "adapter_model.safetensors holds one tensor 'prompt_embeddings' [num_virtual_tokens, token_dim]"])


@case
def case_prefix_tuning_llama(out):
    cfg = PrefixTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=3, prefix_projection=False)
    prompt_case(out, "prefix_tuning_llama", cfg, [
        "prefix tuning: prompt_embeddings [num_virtual_tokens, num_layers*2*token_dim] is viewed as "
        "[batch, n_virt, num_layers*2, kv_heads, head_dim] -> permute to per-layer (key, value) past_key_values of "
        "shape [batch, kv_heads, n_virt, head_dim]; with GQA PEFT sets token_dim = hidden/num_heads*num_kv_heads and "
        "num_attention_heads = num_key_value_heads (see peft_config_after_get_peft_model)",
        "logits are [batch, seq, vocab] (no virtual positions); the real tokens' positions start at n_virt (past length)",
        "the prefix keys are used as-is (RoPE is NOT applied to them; they are a plain cache entry)"])


@case
def case_p_tuning_llama(out):
    cfg = PromptEncoderConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4, encoder_reparameterization_type="MLP",
                              encoder_hidden_size=16)
    prompt_case(out, "p_tuning_llama", cfg, [
        "p-tuning: the MLP encoder (embedding -> Linear(h,16) -> ReLU -> Linear(16,16) -> ReLU -> Linear(16,h)) is "
        "NOT saved: save_pretrained runs it once and saves its output as 'prompt_embeddings' [n_virt, hidden]; "
        "from_pretrained (inference_mode=True) uses those embeddings directly",
        "forward like prompt tuning: logits [batch, n_virt + seq, vocab]"])


def mixed_forward(pm, input_ids, names):
    """pm(input_ids, adapter_names=names) for torch < 2.0.

    PEFT 0.13.2 injects `adapter_names` into every LoraLayer / ModulesToSaveWrapper forward through
    `register_forward_pre_hook(..., with_kwargs=True)`, which needs torch >= 2.0 (the lab has 1.13). This does the
    same injection by wrapping those modules' forward for the duration of the call; the per-row routing itself is
    PEFT's own code (LoraLayer._mixed_batch_forward).
    """
    from peft.tuners.lora import LoraLayer
    from peft.utils import ModulesToSaveWrapper
    patched = []
    for mod in pm.modules():
        if isinstance(mod, (LoraLayer, ModulesToSaveWrapper)):
            orig = mod.forward
            mod.forward = (lambda o: (lambda *a, **k: o(*a, **{**k, "adapter_names": names})))(orig)
            patched.append(mod)
    try:
        with torch.no_grad():
            try:   # if this torch supports the real path, use it
                return pm(input_ids=torch.tensor(input_ids), adapter_names=names).logits.detach()
            except TypeError as e:
                if "with_kwargs" not in str(e):
                    raise
                return pm(input_ids=torch.tensor(input_ids)).logits.detach()
    finally:
        for mod in patched:
            del mod.forward


@case
def case_lora_mixed_batch(out):
    c = Case(out, "lora_mixed_batch", "LlamaForCausalLM")
    base = c.build_base(LlamaForCausalLM, LlamaConfig, LLAMA_KW)
    c.write_inputs(lm_inputs(batch=3))
    c.logits("logits_base.safetensors", forward_logits(base, c.inputs), "plain base model, eval")
    cfg_a = LoraConfig(task_type=TaskType.CAUSAL_LM, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    cfg_b = LoraConfig(task_type=TaskType.CAUSAL_LM, r=2, lora_alpha=4, target_modules=["k_proj", "v_proj", "down_proj"])
    c.meta["peft_config_passed"] = {"a": config_passed(cfg_a), "b": config_passed(cfg_b)}
    c.meta["peft_config_class"] = "LoraConfig"
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base, cfg_a, adapter_name="a")
    pm.add_adapter("b", cfg_b)
    rec = []
    perturb(pm, torch.Generator().manual_seed(SEED_PERTURB), rec)
    c.meta["seeds"] = {"base": SEED_BASE, "inputs": SEED_INPUTS,
                       "get_peft_model": f"torch.manual_seed({SEED_PEFT}) before get_peft_model(adapter_name='a'), "
                                         "then add_adapter('b')", "perturbation": SEED_PERTURB}
    c.meta["perturbation"] = PERTURB_RULE
    c.meta["perturbed_parameters"] = rec
    pm.eval()
    c.save_adapter(pm)
    names = ["a", "__base__", "b"]
    c.meta["adapter_names"] = names
    mixed = mixed_forward(pm, c.inputs["input_ids"], names)
    c.logits("logits_mixed.safetensors", mixed, f"forward(input_ids, adapter_names={names}): row i uses adapter names[i]")
    pm.set_adapter("a")
    la = c.logits("logits_a.safetensors", forward_logits(pm, c.inputs), "whole batch with adapter 'a' active")
    pm.set_adapter("b")
    lb = c.logits("logits_b.safetensors", forward_logits(pm, c.inputs), "whole batch with adapter 'b' active")
    lbase = torch.tensor(0)
    from safetensors.torch import load_file
    lbase = load_file(c.path("logits_base.safetensors"))["logits"]
    c.meta["mixed_row_check_max_abs_diff"] = {
        "row0_vs_logits_a": (mixed[0] - la[0]).abs().max().item(),
        "row1_vs_logits_base": (mixed[1] - lbase[1]).abs().max().item(),
        "row2_vs_logits_b": (mixed[2] - lb[2]).abs().max().item()}
    # reload: adapter 'a' and 'b' both live in subfolders (no adapter is called 'default')
    base2 = LlamaForCausalLM.from_pretrained(c.path("base"), attn_implementation="eager").eval()
    m = PeftModel.from_pretrained(base2, c.path("adapter", "a"), adapter_name="a").eval()
    m.load_adapter(c.path("adapter", "b"), adapter_name="b")
    r = mixed_forward(m, c.inputs["input_ids"], names)
    c.meta["reload_max_abs_diff"] = {"mixed": (r - mixed).abs().max().item()}
    c.meta["files"]["adapter/"] = ("PEFT save_pretrained output with adapters 'a' and 'b': since neither is called "
                                   "'default', both are in subfolders adapter/a/ and adapter/b/ (nothing at the root)")
    c.meta["notes"] += [
        "adapter 'a': r=4 alpha=8 on q_proj,v_proj; adapter 'b': r=2 alpha=4 on k_proj,v_proj,down_proj",
        "'__base__' rows skip every adapter; mixed batches are refused by PEFT when adapters are merged, in training "
        "mode, or with DoRA",
        "torch 1.13 lacks register_forward_pre_hook(with_kwargs=True), which PEFT 0.13.2 uses to pass adapter_names; "
        "the generator injects adapter_names into each LoraLayer.forward itself (mixed_forward) and PEFT's "
        "_mixed_batch_forward does the routing; mixed_row_check_max_abs_diff confirms row i equals the single-adapter "
        "logits of names[i]",
        "PEFT 0.13.2 KEY POLLUTION with short adapter names: get_peft_model_state_dict keeps keys where "
        "`'lora_' in k and adapter_name in k` (substring test) -- 'a' and 'b' occur in every key ('base_model'), so "
        "adapter/a/adapter_model.safetensors ALSO holds adapter b's tensors under keys '...lora_A.b.weight' and "
        "adapter/b/ holds a's under '...lora_A.a.weight'; then the name is removed with str.replace('.'+name, ''). "
        "On load PEFT maps '...lora_A.b.weight' to '...lora_A.a.b.weight', which matches no parameter and is silently "
        "dropped (load_state_dict strict=False), so reloading still reproduces the logits exactly. A loader must "
        "ignore such foreign keys (keys whose part after lora_A/lora_B is not just 'weight')"]
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
    fpath = os.path.join(a.out, "FAILED.json")
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
