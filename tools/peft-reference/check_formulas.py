"""Re-derives the PEFT reference logits from docs/methods' formulas alone (no PEFT code).

For every logits case of make_method_cases.py (LoHa, LoKr, OFT, VeRA, LN tuning, BOFT, FourierFT, the mixed cases)
this loads the shared base with transformers, reads adapter_config.json + adapter_model.safetensors, applies the
formulas written in docs/methods/<method>.md with plain torch (forward hooks), and compares with logits_adapter
(logits_mixed) and, through merged weights, logits_merged; for the train_* cases of make_method_cases.py it replays
the AdamW steps through those formulas (autograd on plain torch) and compares the losses and the final adapter
tensors. It is a check of the notes, and a readable second implementation for whoever writes the plugins.

    source /work/lab/env.sh && /usr/bin/python3 tools/peft-reference/check_formulas.py [case ...]

Prints one line per case; exits 1 when a difference exceeds 1e-4. This is our own code; nothing in CI runs it.
"""
import json
import math
import os
import re
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_cases import DEFAULT_OUT  # noqa: E402

from safetensors.torch import load_file  # noqa: E402
from transformers import BertForSequenceClassification, GPT2LMHeadModel, LlamaForCausalLM  # noqa: E402
from transformers.pytorch_utils import Conv1D  # noqa: E402

ROOT = DEFAULT_OUT
CLASSES = {"llama": LlamaForCausalLM, "llama_bias": LlamaForCausalLM, "gpt2": GPT2LMHeadModel,
           "bert": BertForSequenceClassification}


def load_adapter(folder):
    cfg = json.load(open(os.path.join(folder, "adapter_config.json")))
    sd = load_file(os.path.join(folder, "adapter_model.safetensors"))
    per_module, shared = {}, {}
    for k, v in sd.items():
        if not k.startswith("base_model.model."):
            shared[k] = v          # VeRA's base_model.vera_A / vera_B
            continue
        path, param = k[len("base_model.model."):].rsplit(".", 1)
        for marker in (".ln_tuning_layers", ".modules_to_save", ".lora_A", ".lora_B"):
            if marker in path:
                path, sub = path.split(marker)
                param = marker[1:] + "." + param
        per_module.setdefault(path, {})[param] = v
    return cfg, per_module, shared


def pattern_value(patterns, key_rule, path, default):
    for k in patterns:
        if re.match(key_rule.format(k=k), path):
            return patterns[k]
    return default


def lycoris_pattern(cfg, path, field, default):
    # LoHaModel/LoKrModel._create_and_replace: the first key of rank_pattern then alpha_pattern that matches
    keys = list(cfg.get("rank_pattern", {})) + list(cfg.get("alpha_pattern", {}))
    hit = next((k for k in keys if re.match(rf"(.*\.)?{k}$", path)), None)
    return cfg.get(field + "_pattern", {}).get(hit, default) if hit is not None else default


def in_out(mod):
    if isinstance(mod, torch.nn.Linear):
        return mod.in_features, mod.out_features
    return mod.weight.shape[0], mod.weight.shape[1]


def weight_oi(mod):
    """The base weight in the Linear layout [out, in]."""
    return mod.weight if isinstance(mod, torch.nn.Linear) else mod.weight.T


def cayley(a):
    s = 0.5 * (a - a.transpose(-1, -2))
    eye = torch.eye(a.shape[-1]).expand_as(a)
    return (eye - s) @ torch.inverse(eye + s)


# ----------------------------------------------------------------------------------------------- one layer each
class Delta:
    """An additive method: y = h + x @ dW.T."""

    def __init__(self, dw):
        self.dw = dw

    def out(self, mod, x, h):
        return h + F.linear(x, self.dw)

    def merge(self, w_oi):
        return w_oi + self.dw


def loha(cfg, path, t, mod):
    r = lycoris_pattern(cfg, path, "rank", cfg["r"])
    alpha = lycoris_pattern(cfg, path, "alpha", cfg["alpha"])
    return Delta((t["hada_w1_a"] @ t["hada_w1_b"]) * (t["hada_w2_a"] @ t["hada_w2_b"]) * (alpha / r))


def lokr(cfg, path, t, mod):
    w1 = t["lokr_w1"] if "lokr_w1" in t else t["lokr_w1_a"] @ t["lokr_w1_b"]
    w2 = t["lokr_w2"] if "lokr_w2" in t else t["lokr_w2_a"] @ t["lokr_w2_b"]
    return Delta(torch.kron(w1, w2))   # 0.13.2: no alpha/r scaling


class Oft:
    def __init__(self, cfg, path, t, mod):
        _, out = in_out(mod)
        r = lycoris_pattern(cfg, path, "rank", cfg["r"])
        blocks = t["oft_r"]
        b = math.ceil(out / r)
        if cfg["coft"]:
            e = cfg["eps"] * b * b / math.sqrt(blocks.shape[0])
            n = blocks.flatten(1).norm(dim=1)[:, None, None]
            blocks = torch.where(n <= e, blocks, e * blocks / n)
        q = cayley(blocks)
        q = q.expand(r, b, b) if q.shape[0] == 1 else q
        self.r = torch.block_diag(*q.unbind(0))[:out, :out]

    def out(self, mod, x, h):
        bias = mod.bias if mod.bias is not None else 0
        return (h - bias) @ self.r + bias

    def merge(self, w_oi):
        return self.r.T @ w_oi


class Vera:
    def __init__(self, cfg, path, t, mod, shared):
        fin, fout = in_out(mod)
        a, b = shared["base_model.vera_A"][:, :fin], shared["base_model.vera_B"][:fout, :]
        self.lb, self.ld, self.a, self.b = t["vera_lambda_b"], t["vera_lambda_d"], a, b

    def out(self, mod, x, h):
        return h + self.lb * F.linear(self.ld * F.linear(x, self.a), self.b)

    def merge(self, w_oi):
        return w_oi + (self.lb[:, None] * self.b) @ (self.ld[:, None] * self.a)


class Boft:
    def __init__(self, cfg, path, t, mod):
        fin, fout = in_out(mod)
        rr, self.s = t["boft_R"], t["boft_s"]
        n, d, bs, _ = rr.shape
        m = n - 1
        rot = torch.eye(fin)
        for i in range(n):
            bd = torch.block_diag(*cayley(rr[i]).unbind(0))
            p = perm_matrix(fin, d // 2 ** i, bs // 2, m)
            rot = (p @ bd @ p.T) @ rot
        self.rot = rot

    def weight(self, w_oi):
        return (self.rot @ w_oi.T).T * self.s

    def out(self, mod, x, h):
        return F.linear(x, self.weight(weight_oi(mod)), mod.bias)

    def merge(self, w_oi):
        return self.weight(w_oi)


def perm_matrix(n, nb, g, m):
    idx = torch.arange(n)
    if m > 0:
        span = n // nb
        groups = span // g
        order = [k for k in range(0, groups, 2)] + [k for k in range(1, groups, 2)]
        within = torch.cat([torch.arange(k * g, k * g + g) for k in order])
        idx = torch.cat([s + within for s in range(0, n, span)])
    p = torch.zeros(n, n)
    p[torch.arange(n), idx] = 1
    return p


def fourier(cfg, path, t, mod):
    fin, fout = in_out(mod)
    nf = pattern_value(cfg.get("n_frequency_pattern", {}), r".*\.{k}$", path, cfg["n_frequency"])
    idx = torch.randperm(fout * fin, generator=torch.Generator().manual_seed(cfg["random_loc_seed"]))[:nf]
    dense = torch.zeros(fout, fin)
    dense[idx // fin, idx % fin] = t["fourierft_spectrum"]
    return Delta(torch.fft.ifft2(dense).real * cfg["scaling"])


def build(cfg, path, t, mod, shared):
    kind = cfg["peft_type"]
    if kind == "LOHA":
        return loha(cfg, path, t, mod)
    if kind == "LOKR":
        return lokr(cfg, path, t, mod)
    if kind == "OFT":
        return Oft(cfg, path, t, mod)
    if kind == "VERA":
        return Vera(cfg, path, t, mod, shared)
    if kind == "BOFT":
        return Boft(cfg, path, t, mod)
    if kind == "FOURIERFT":
        return fourier(cfg, path, t, mod)
    if kind == "LORA":
        return Delta(t["lora_B.weight"] @ t["lora_A.weight"] * (cfg["lora_alpha"] / cfg["r"]))
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------- a whole case
def apply(model, adapters, merge):
    """adapters: [(cfg, per_module, shared)] in load order (inner first). Returns hook handles."""
    mods = dict(model.named_modules())
    chains, handles = {}, []
    for cfg, per_module, shared in adapters:
        for path, t in per_module.items():
            mod = mods[path]
            if cfg["peft_type"] == "LN_TUNING" or path.split(".")[-1] in (cfg.get("modules_to_save") or []):
                with torch.no_grad():   # LN tuning / modules_to_save: the module's own parameters replaced
                    for k, v in t.items():
                        getattr(mod, k.split(".")[-1]).copy_(v)
                continue
            chains.setdefault(path, []).append(build(cfg, path, t, mod, shared))
    for path, chain in chains.items():
        mod = mods[path]
        if merge:
            with torch.no_grad():
                w = weight_oi(mod).clone()
                for layer in chain:
                    w = layer.merge(w)
                mod.weight.copy_(w if isinstance(mod, torch.nn.Linear) else w.T)
            continue

        def hook(m, inp, h, chain=chain):
            for layer in chain:
                h = layer.out(m, inp[0], h)
            return h
        handles.append(mod.register_forward_hook(hook))
    return handles


def logits(case_dir, meta, adapters, merge):
    kind = meta["base"]["folder"].split("/")[-1]
    model = CLASSES[kind].from_pretrained(os.path.join(ROOT, "bases", kind), attn_implementation="eager").eval()
    apply(model, adapters, merge)
    inputs = json.load(open(os.path.join(case_dir, "inputs.json")))
    with torch.no_grad():
        return model(**{k: torch.tensor(v) for k, v in inputs.items()}).logits


def check(name):
    d = os.path.join(ROOT, name)
    meta = json.load(open(os.path.join(d, "meta.json")))
    if name.startswith("mixed_"):
        adapters = [load_adapter(os.path.join(d, f"adapter_{n}")) for n in ("one", "two")]
        pairs = [("logits_mixed", False), ("logits_merged", True)]
    else:
        adapters = [load_adapter(os.path.join(d, "adapter"))]
        pairs = [("logits_adapter", False)] + ([("logits_merged", True)] if "logits_merged.safetensors"
                                               in meta["logits_shapes"] else [])
    res = {}
    for fname, merge in pairs:
        ref = load_file(os.path.join(d, fname + ".safetensors"))["logits"]
        res[fname] = (logits(d, meta, adapters, merge) - ref).abs().max().item()
    return res


def train_check(name):
    """Replays a train_* case: the same AdamW steps on the formulas (autograd through plain torch)."""
    d = os.path.join(ROOT, name)
    meta = json.load(open(os.path.join(d, "meta.json")))
    tr = meta["training"]
    folders = ["initial_adapter_one", "initial_adapter_two"] if "mixed" in name else ["initial_adapter"]
    adapters = [load_adapter(os.path.join(d, f)) for f in folders]
    kind = meta["base"]["folder"].split("/")[-1]
    model = CLASSES[kind].from_pretrained(os.path.join(ROOT, "bases", kind), attn_implementation="eager")
    for p in model.parameters():
        p.requires_grad_(False)
    mods = dict(model.named_modules())
    params, chains = [], {}
    for cfg, per_module, shared in adapters:
        for path, t in per_module.items():
            if cfg["peft_type"] == "LN_TUNING":
                with torch.no_grad():
                    for k, v in t.items():
                        getattr(mods[path], k.split(".")[-1]).copy_(v)
                for k in t:
                    w = getattr(mods[path], k.split(".")[-1])
                    w.requires_grad_(True)
                    params.append(w)
                continue
            for k in t:
                t[k] = t[k].clone().requires_grad_(True)
                params.append(t[k])
            chains.setdefault(path, []).append((cfg, path, t, shared))
    for path, chain in chains.items():
        def hook(m, inp, h, chain=chain):
            for cfg, p, t, shared in chain:   # rebuilt every forward from the current tensors
                h = build(cfg, p, t, m, shared).out(m, inp[0], h)
            return h
        mods[path].register_forward_hook(hook)
    rows = torch.tensor(json.load(open(os.path.join(d, "data.json")))["input_ids"])
    opt = torch.optim.AdamW(params, lr=tr["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    losses = []
    model.train()
    for _ in range(tr["steps"]):
        loss = model(input_ids=rows, labels=rows).loss
        loss.backward()
        losses.append(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
    res = {"losses": max(abs(a - b) for a, b in zip(losses, tr["losses"]))}
    worst = 0.0
    for f, (cfg, per_module, _) in zip(folders, adapters):
        _, final, _ = load_adapter(os.path.join(d, f.replace("initial", "final")))
        for path, t in final.items():
            for k, v in t.items():
                mine = getattr(mods[path], k.split(".")[-1]) if cfg["peft_type"] == "LN_TUNING" else per_module[path][k]
                worst = max(worst, (mine.detach() - v).abs().max().item())
    res["final_tensors"] = worst
    return res


def main():
    names = sys.argv[1:] or sorted(n for n in os.listdir(ROOT) if re.match(
        r"(loha|lokr|oft_llama|vera|ln_tuning|boft|fourierft|mixed_(lora|oft)|train_(?!b))", n))
    torch.set_num_threads(1)
    bad = False
    for n in names:
        r = train_check(n) if n.startswith("train_") else check(n)
        ok = all(v < 1e-4 for v in r.values())
        bad |= not ok
        print(f"{'ok ' if ok else 'BAD'} {n}: " + ", ".join(f"{k} {v:.2e}" for k, v in r.items()))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
