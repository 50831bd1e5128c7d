"""Copies real chat templates, byte for byte, into tests/fixtures/chat_templates/.

Where the texts come from (both are copies of the models' tokenizer_config.json "chat_template"):
  * openvinotoolkit/openvino.genai, tests/python_tests/data/tokenizer_configs.py at commit
    da1db864d2bc1a265e9a036f5b57ef13f0e86c2c (last changed in 6d90f5f9d5c8f724f4172494da66888e309333ad):
    a dict of 166 Hugging Face model ids -> bos/eos/pad/unk tokens and chat_template, read here with
    ast.literal_eval (the file is never executed).
  * ggerganov/llama.cpp at c392e509 (the lab's /work/lab/llama.cpp-src), models/templates/*.jinja:
    written by its scripts/get_chat_template.py from the Hugging Face repositories.
Where both hold a model, the texts are compared and must be identical (they are: Llama 3.1/3.2,
Phi-3.5-mini, Mistral-Nemo, Qwen2.5).

Writes
  templates/<name>.jinja   the major families' templates (exact text, no trailing newline added)
  templates.json           for each: model id, file, the special tokens transformers passes, sources
  corpus.json              every distinct template of both sources with its tokens (a wider check of the
                           interpreter: every one must render as jinja2 renders it, or fail as it fails)

How to run (needs the two source trees; nothing in the build or CI runs it)
  /usr/bin/python3 tools/chat-templates/extract_templates.py \
      [--openvino-git /work/.mirror/openvinotoolkit+openvino.genai/repo] [--llama-cpp /work/lab/llama.cpp-src]
Then remake the expected outputs with render_references.py.
"""
import argparse
import ast
import json
import os
import subprocess

OPENVINO_COMMIT = "da1db864d2bc1a265e9a036f5b57ef13f0e86c2c"
OPENVINO_PATH = "tests/python_tests/data/tokenizer_configs.py"
LLAMA_CPP_COMMIT = "c392e509"

# name -> (model id, where the text is taken from: "openvino" or a llama.cpp models/templates file)
MAJOR = {
    "llama-3-8b-instruct": ("meta-llama/Meta-Llama-3-8B-Instruct", "openvino"),
    "llama-3.1-8b-instruct": ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama-Llama-3.1-8B-Instruct.jinja"),
    "llama-3.2-3b-instruct": ("meta-llama/Llama-3.2-3B-Instruct", "meta-llama-Llama-3.2-3B-Instruct.jinja"),
    "qwen2-7b-instruct": ("Qwen/Qwen2-7B-Instruct", "openvino"),
    "qwen2.5-7b-instruct": ("Qwen/Qwen2.5-7B-Instruct", "Qwen-Qwen2.5-7B-Instruct.jinja"),
    "mistral-7b-instruct-v0.1": ("mistralai/Mistral-7B-Instruct-v0.1", "openvino"),
    # The original mistralai v0.1/v0.2 instruct template (before system prompts were accepted); the same
    # text is in llama.cpp's tests/test-chat-template.cpp as "mistralai/Mistral-7B-Instruct-v0.2".
    "mistral-7b-instruct-v0.2-original": ("TheBloke/Mixtral-8x7B-Instruct-v0.1-GPTQ", "openvino"),
    "mistral-7b-instruct-v0.3": ("mistralai/Mistral-7B-Instruct-v0.3", "openvino"),
    "mistral-nemo-instruct-2407": ("mistralai/Mistral-Nemo-Instruct-2407", "mistralai-Mistral-Nemo-Instruct-2407.jinja"),
    "gemma-7b-it": ("google/gemma-7b-it", "openvino"),
    "gemma-3-1b-it": ("google/gemma-3-1b-it", "openvino"),
    "phi-3-mini-4k-instruct": ("microsoft/Phi-3-mini-4k-instruct", "openvino"),
    "phi-3-small-8k-instruct": ("microsoft/Phi-3-small-8k-instruct", "openvino"),
    "phi-3-medium-128k-instruct": ("microsoft/Phi-3-medium-128k-instruct", "openvino"),
    "phi-3.5-mini-instruct": ("microsoft/Phi-3.5-mini-instruct", "microsoft-Phi-3.5-mini-instruct.jinja"),
}

# Special tokens of the models only llama.cpp has (its files carry no tokens): from the model's
# tokenizer_config.json, the same as Qwen2.5-3B-Instruct's in the openvino list.
TOKENS = {
    "Qwen/Qwen2.5-7B-Instruct": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
}
# Models whose template is the same text as one above (Gemma 2 kept Gemma 1's, Llama 3.3 Llama 3.1's,
# Mixtral Mistral v0.1's): listed with it in templates.json under same_text_in.


def openvino_configs(git_dir):
    text = subprocess.run(["git", "--git-dir", git_dir, "show", f"{OPENVINO_COMMIT}:{OPENVINO_PATH}"],
                          check=True, capture_output=True, text=True).stdout
    module = ast.parse(text)
    function = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "get_tokenizer_configs")
    returned = next(n for n in ast.walk(function) if isinstance(n, ast.Return))
    return ast.literal_eval(returned.value)


def token_string(value):
    # Some entries give AddedToken dicts; transformers' special_tokens_map passes their content.
    if isinstance(value, dict):
        return value["content"]
    return value


def tokens_of(config):
    out = {}
    for key in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = token_string(config.get(key))
        if value is not None:
            out[key] = value
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--openvino-git", default="/work/.mirror/openvinotoolkit+openvino.genai/repo")
    parser.add_argument("--llama-cpp", default="/work/lab/llama.cpp-src")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "chat_templates"))
    args = parser.parse_args()

    configs = openvino_configs(args.openvino_git)
    llama_dir = os.path.join(args.llama_cpp, "models", "templates")
    llama = {}
    for f in sorted(os.listdir(llama_dir)):
        if f.endswith(".jinja"):
            with open(os.path.join(llama_dir, f), encoding="utf-8", newline="") as h:
                llama[f] = h.read()

    # Same model in both sources: the texts must agree.
    llama_models = {"meta-llama-Llama-3.1-8B-Instruct.jinja": "meta-llama/Llama-3.1-8B-Instruct",
                    "meta-llama-Llama-3.2-3B-Instruct.jinja": "meta-llama/Llama-3.2-3B-Instruct",
                    "microsoft-Phi-3.5-mini-instruct.jinja": "microsoft/Phi-3.5-mini-instruct",
                    "mistralai-Mistral-Nemo-Instruct-2407.jinja": "mistralai/Mistral-Nemo-Instruct-2407"}
    for f, model in llama_models.items():
        assert llama[f] == configs[model]["chat_template"], f"{f} differs from openvino's {model}"
    assert llama["Qwen-Qwen2.5-7B-Instruct.jinja"] == configs["Qwen/Qwen2.5-3B-Instruct"]["chat_template"]

    os.makedirs(os.path.join(args.out, "templates"), exist_ok=True)
    meta = []
    for name, (model, where) in MAJOR.items():
        if where == "openvino":
            text = configs[model]["chat_template"]
            tokens = tokens_of(configs[model])
            source = f"openvinotoolkit/openvino.genai@{OPENVINO_COMMIT[:12]} {OPENVINO_PATH} ['{model}']"
        else:
            text = llama[where]
            tokens = tokens_of(configs[model]) if model in configs else TOKENS[model]
            source = f"ggerganov/llama.cpp@{LLAMA_CPP_COMMIT} models/templates/{where}"
            if model in configs:
                source += f"; identical in openvinotoolkit/openvino.genai@{OPENVINO_COMMIT[:12]} {OPENVINO_PATH}"
        same = sorted(m for m, c in configs.items() if c["chat_template"] == text and m != model)
        same += [f"llama.cpp models/templates/{f}" for f, t in llama.items() if t == text and f != where]
        file = f"templates/{name}.jinja"
        with open(os.path.join(args.out, file), "w", encoding="utf-8", newline="") as h:
            h.write(text)
        meta.append({"name": name, "model": model, "file": file, "special_tokens": tokens, "source": source,
                     "same_text_in": same})
    with open(os.path.join(args.out, "templates.json"), "w", encoding="utf-8") as h:
        json.dump(meta, h, indent=2, ensure_ascii=False)
        h.write("\n")

    corpus, seen = [], {}
    for model, config in configs.items():
        # Newer tokenizer_config.json files hold named templates ("default", "tool_use", "rag").
        named = config["chat_template"] if isinstance(config["chat_template"], dict) else {None: config["chat_template"]}
        for template_name, text in named.items():
            label = model if template_name is None else f"{model} [{template_name}]"
            if text in seen:
                seen[text]["also"].append(label)
                continue
            entry = {"model": label, "source": f"openvino.genai@{OPENVINO_COMMIT[:12]}", "special_tokens": tokens_of(config),
                     "also": [], "template": text}
            seen[text] = entry
            corpus.append(entry)
    for f, text in llama.items():
        if text in seen:
            seen[text]["also"].append(f"llama.cpp {f}")
            continue
        entry = {"model": f[:-len(".jinja")], "source": f"llama.cpp@{LLAMA_CPP_COMMIT} models/templates/{f}",
                 "special_tokens": {"bos_token": "<s>", "eos_token": "</s>"}, "also": [], "template": text}
        seen[text] = entry
        corpus.append(entry)
    with open(os.path.join(args.out, "corpus.json"), "w", encoding="utf-8") as h:
        json.dump(corpus, h, indent=1, ensure_ascii=False)
        h.write("\n")
    print(f"{len(meta)} templates, {len(corpus)} distinct corpus templates")


if __name__ == "__main__":
    main()
