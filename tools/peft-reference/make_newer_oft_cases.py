"""Adapters of PEFT's NEWER OFT (0.14+), written by the real PEFT 0.15.0 / 0.17.1, that a PEFT 0.13.2 reader must refuse.

PEFT 0.14.0 redesigned OFT: a new config field `oft_block_size` (exactly one of `r` / `oft_block_size` non-zero),
blocks over the INPUT features (0.13.2: the output features), a new trainable `oft_s` [out, 1] scale, fields
`fan_in_fan_out`, `bias`, `exclude_modules`; PEFT 0.16.0 added `use_cayley_neumann` / `num_cayley_neumann_terms`.
The tensor key `oft_r` keeps its name but not its meaning, so a 0.13.2-style reader that ignored the new fields would
compute wrong numbers silently. PEFT itself (0.14+) refuses 0.13.2 files the other way round: OFTConfig.check_kwargs
raises when `oft_block_size` is absent.

Writes tests/fixtures/peft/oft_peft015_refused/ or oft_peft017_refused/ (adapter/, inputs.json, logits_base and
logits_adapter as computed by that PEFT version, for the record only, and meta.json, which also records what PEFT 0.13.2
does with the file: a subprocess in the lab's own environment tries PeftModel.from_pretrained).

How to run (needs bases/llama from make_method_cases.py; the lab's transformers/torch are reused):
    M=/work/.mirror; T=/tmp/peft-newer; mkdir -p $T/p015 $T/p017 $T/hub
    git --git-dir=$M/huggingface+peft/repo archive v0.15.0 src/peft | tar x -C $T/p015
    git --git-dir=$M/huggingface+peft/repo archive v0.17.1 src/peft | tar x -C $T/p017
    git --git-dir=$M/huggingface+huggingface_hub/repo archive v0.26.5 src/huggingface_hub | tar x -C $T/hub
    source /work/lab/env.sh
    PYTHONPATH=$T/p015/src:$T/hub/src:$PYTHONPATH /usr/bin/python3 tools/peft-reference/make_newer_oft_cases.py 0.15.0
    PYTHONPATH=$T/p017/src:$T/hub/src:$PYTHONPATH /usr/bin/python3 tools/peft-reference/make_newer_oft_cases.py 0.17.1
(PEFT >= 0.15 needs huggingface_hub >= 0.25; 0.26.5 works with the lab's transformers.)

This is our own code (not part of PEFT). Nothing in the build or CI runs it.
"""
import argparse
import json
import os
import subprocess
import sys
import warnings

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_cases as mc  # noqa: E402
from make_cases import SEED_PEFT, SEED_PERTURB, config_passed, forward_logits, jsonable, lm_inputs, st_layout  # noqa: E402

import peft  # noqa: E402
from peft import OFTConfig, PeftModel, TaskType, get_peft_model  # noqa: E402
from transformers import LlamaForCausalLM  # noqa: E402

VARIANTS = {
    "0.15.0": ("oft_peft015_refused",
               dict(task_type=TaskType.CAUSAL_LM, r=4, oft_block_size=0, target_modules=["q_proj", "v_proj"]),
               ["PEFT 0.15.0 with r=4, oft_block_size=0: `r` still means the number of blocks, but the blocks now "
                "cover the INPUT features (oft_r [4, 8, 8] for q_proj AND v_proj, whose in_features are both 32; "
                "0.13.2 would make v_proj [4, 4, 4] over its 16 outputs) and there is a new oft_s [out, 1]",
                "the dangerous look-alike: the config's r equals a 0.13.2 config's r; only the presence of the key "
                "`oft_block_size` (and of `oft_s` tensors) tells the versions apart"]),
    "0.17.1": ("oft_peft017_refused",
               dict(task_type=TaskType.CAUSAL_LM, r=0, oft_block_size=8, use_cayley_neumann=True,
                    target_modules=["q_proj", "v_proj"]),
               ["PEFT 0.17.1 with oft_block_size=8 (r=0: derived, in_features/8 = 4 blocks), use_cayley_neumann=True "
                "(the Cayley transform approximated by a Neumann series of num_cayley_neumann_terms terms)",
                "0.17 also changed the tensors: one oft_R.weight [r, b*(b-1)/2] per layer (the packed upper triangle of "
                "each skew-symmetric block, here [4, 28] for blocks of 8) and no oft_s"]),
}

REFUSAL = ("adapter_config.json has peft_type OFT and the key `oft_block_size`: this is the OFT of PEFT >= 0.14.0 "
           "(blocks over the input features, an extra oft_s scale; 0.16+ also use_cayley_neumann), whose tensors "
           "mean something else than PEFT 0.13.2's OFT (r blocks over the output features, oft_r only); refuse it "
           "and name the field, rather than compute wrong numbers")

LAB_ENV_PROBE = r"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import peft
from transformers import LlamaForCausalLM
from peft import PeftModel
res = {"peft": peft.__version__}
try:
    m = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(sys.argv[1]), sys.argv[2])
    res["loaded"] = True
    res["note"] = "loaded without error"
except Exception as e:
    res["loaded"] = False
    res["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(res))
"""


def probe_with_lab_peft(base_dir, adapter_dir):
    """Ask the lab's own PEFT 0.13.2 (a clean PYTHONPATH from /work/lab/env.sh) to load the adapter."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ":".join(p for p in env.get("PYTHONPATH", "").split(":")
                                 if "/work/lab/" in p)
    out = subprocess.run([sys.executable, "-c", LAB_ENV_PROBE, base_dir, adapter_dir], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("version", choices=sorted(VARIANTS))
    ap.add_argument("--out", default=mc.DEFAULT_OUT)
    a = ap.parse_args()
    if peft.__version__ != a.version:
        sys.exit(f"this run imports peft {peft.__version__} from {peft.__file__}, expected {a.version} (see the docstring)")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    name, kwargs, notes = VARIANTS[a.version]
    base_dir = os.path.join(a.out, "bases", "llama")
    if not os.path.isfile(os.path.join(base_dir, "model.safetensors")):
        sys.exit(f"{base_dir} is missing: run make_method_cases.py first")
    c = mc.Case(a.out, name, "LlamaForCausalLM")
    c.meta["generator"] = "tools/peft-reference/make_newer_oft_cases.py " + a.version
    c.meta["versions"]["peft"] = peft.__version__
    c.meta["versions"]["huggingface_hub"] = __import__("huggingface_hub").__version__
    c.meta["sources"] = dict(c.meta["sources"], peft={"repo": "huggingface/peft", "tag": "v" + a.version},
                             huggingface_hub={"repo": "huggingface/huggingface_hub", "tag": "v0.26.5"})
    c.meta["base"] = {"folder": "../bases/llama", "what": "the shared tiny Llama of make_method_cases.py"}

    def base():
        m = LlamaForCausalLM.from_pretrained(base_dir, attn_implementation="eager").eval()
        m.name_or_path = m.config._name_or_path = "../bases/llama"
        return m

    c.write_inputs(lm_inputs())
    c.logits("logits_base.safetensors", forward_logits(base(), c.inputs), "plain base model, eval")
    cfg = OFTConfig(**kwargs)
    c.meta["peft_config_passed"] = config_passed(cfg)
    torch.manual_seed(SEED_PEFT)
    pm = get_peft_model(base(), cfg)
    gen, rec = torch.Generator().manual_seed(SEED_PERTURB), []
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "oft_" in n and torch.all(p == 0):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
                rec.append({"name": n, "rule": "0 -> randn*0.1"})
            elif "oft_" in n and torch.all(p == 1):
                p.copy_(1 + torch.randn(p.shape, generator=gen) * 0.1)
                rec.append({"name": n, "rule": "1 -> 1 + randn*0.1"})
    c.meta["perturbed_parameters"] = rec
    pm.eval()
    cwd = os.getcwd()
    os.chdir(c.dir)
    try:
        pm.save_pretrained("adapter")
    finally:
        os.chdir(cwd)
    os.remove(c.path("adapter", "README.md"))
    c.meta["files"]["adapter/"] = (f"PEFT {a.version} save_pretrained output (adapter_config.json, "
                                   "adapter_model.safetensors); the model card was removed")
    c.meta["adapter_safetensors_layout"] = {"adapter": st_layout(c.path("adapter", "adapter_model.safetensors"))}
    c.meta["adapter_config_saved"] = json.load(open(c.path("adapter", "adapter_config.json")))
    ref = c.logits("logits_adapter.safetensors", forward_logits(pm, c.inputs),
                   f"PEFT {a.version}'s forward with this adapter (for the record: a 0.13.2 reader refuses the file)")
    m2 = PeftModel.from_pretrained(base(), c.path("adapter")).eval()
    c.meta["reload_max_abs_diff"] = {"default": (forward_logits(m2, c.inputs) - ref).abs().max().item()}
    c.meta["expected_refusal"] = REFUSAL
    c.meta["peft_0.13.2_load_attempt"] = probe_with_lab_peft(os.path.abspath(base_dir), os.path.abspath(c.path("adapter")))
    c.meta["notes"] += notes + [
        "the reverse is refused by PEFT itself: PEFT >= 0.14 OFTConfig.check_kwargs raises 'OFT has been updated since "
        "PEFT 0.14.0. Your trained adapter weights are incompatible with the latest version of OFT...' when a config "
        "lacks oft_block_size",
        "peft_0.13.2_load_attempt: what the lab's PEFT 0.13.2 does with this folder"]
    c.finish()


if __name__ == "__main__":
    main()
