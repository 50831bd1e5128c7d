#!/usr/bin/env bash
# The SDK check: a third party's way from our packages to a working plugin, run by tools/test.sh.
#  1. tools/pack.sh: PeftHost.Abstractions (checked: assembly, XML docs, build/ files, contract version)
#     and PeftHost.Templates, with a new version;
#  2. `dotnet new pefthost-tuner -n MyMethod` (the template installed in a throw-away hive), built
#     outside the repository from the package; samples/ScaleShift built from the package;
#  3. both output folders, as they are, dropped into a plugins folder as <id>/: `pefthost plugins`
#     loads them, `pefthost train` trains each a few steps on `make-model`'s tiny Llama and saves,
#     `pefthost logits` loads each saved adapter back (changes the base's logits; merged = unmerged
#     where the method merges, a clear refusal where it cannot).
# Needs Host/Cli built in Release (tools/test.sh has built it; else it is built). Leaves no global
# state: the template hive, the projects and the models live in a temporary folder, removed at the end.
#   bash tools/sdk-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
started=$(date +%s)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Each line says how far into the check it is (seconds), so a slow step shows in the CI log.
say() { echo "sdk-check: [$(( $(date +%s) - started )) s] $*"; }
fail() { echo "sdk-check: FAILED: $*" >&2; exit 1; }

pefthost=$repo/Host/Cli/bin/Release/net10.0/pefthost
[ -x "$pefthost" ] || dotnet build Host/Cli -c Release -v:q -nologo
command -v python3 >/dev/null || fail "python3 is needed (it reads the packages and the logits files)."

# Files of a folder, one name a line, sorted.
files_of() { (cd "$1" && find . -type f -printf '%P\n' | sort); }

# The largest absolute difference between two logits files (pefthost logits: one float32 tensor 'logits').
max_diff() {
  python3 - "$1" "$2" <<'EOF'
import array, json, struct, sys
def logits(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    entry = json.loads(data[8:8 + n])["logits"]
    assert entry["dtype"] == "F32", entry
    start, end = entry["data_offsets"]
    values = array.array("f")
    values.frombytes(data[8 + n + start:8 + n + end])
    return entry["shape"], values
(sa, a), (sb, b) = logits(sys.argv[1]), logits(sys.argv[2])
assert sa == sb, (sa, sb)
print(max(abs(x - y) for x, y in zip(a, b)))
EOF
}

# Whether a number (max_diff's) is below a bound.
below() { python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"; }

# --- 1. the packages ---------------------------------------------------------------------------------
version=$(bash tools/pack.sh | tail -1)
package=artifacts/packages/PeftHost.Abstractions.$version.nupkg
contract=$(sed -n 's/.*const string Version = "\([0-9.]*\)";.*/\1/p' Abstractions/PeftContract.cs)
python3 - "$package" "$contract" <<'EOF' || fail "$package is not the SDK package it should be (see above)."
import sys, zipfile
package, contract = sys.argv[1], sys.argv[2]
names = set(zipfile.ZipFile(package).namelist())
need = ["lib/net10.0/PeftHost.Abstractions.dll", "lib/net10.0/PeftHost.Abstractions.xml",
        "build/PeftHost.Abstractions.props", "build/PeftHost.Abstractions.targets", "build/PeftHost.Plugin.targets"]
missing = [n for n in need if n not in names]
nuspec = zipfile.ZipFile(package).read("PeftHost.Abstractions.nuspec").decode()
if missing: print("missing:", missing)
if f"plugin contract {contract}:" not in nuspec: print(f"the description does not name contract {contract}")
sys.exit(1 if missing or f"plugin contract {contract}:" not in nuspec else 0)
EOF
say "packed $version (contract $contract)"

# --- 2. a project from the template, and the sample --------------------------------------------------
hive=$work/template-hive
dotnet new install "artifacts/packages/PeftHost.Templates.$version.nupkg" --debug:custom-hive "$hive" >"$work/template.log" 2>&1 \
  || { cat "$work/template.log"; fail "dotnet new install of the template package"; }
dotnet new pefthost-tuner -n MyMethod -o "$work/MyMethod" --debug:custom-hive "$hive" >>"$work/template.log" 2>&1 \
  || { cat "$work/template.log"; fail "dotnet new pefthost-tuner"; }
say "created MyMethod from the template"
grep -q 'PeftTypeName = "MYMETHOD"' "$work/MyMethod/MyMethodTuner.cs" || fail "the template's peft_type is not MYMETHOD"
grep -q "<PackageReference Include=\"PeftHost.Abstractions\" Version=\"$version\" />" "$work/MyMethod/MyMethod.csproj" \
  || fail "the template's project does not reference PeftHost.Abstractions $version"
cat > "$work/NuGet.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <add key="pefthost-local" value="$repo/artifacts/packages" />
  </packageSources>
</configuration>
EOF
# Both restore into a folder of their own (the packed package is not added to the machine's NuGet
# cache); what the machine's cache already has (TorchSharp, ...) is taken from it, not downloaded.
restore_here=(-p:RestorePackagesPath="$work/nuget-packages" -p:RestoreFallbackFolders="${NUGET_PACKAGES:-$HOME/.nuget/packages}")
# MyMethod is published (which builds it first): neither its build output nor what `dotnet publish`
# writes may hold what the host shares. The sample is built copying its package dependencies, as a
# plugin that carries private dependencies of its own is: the shared ones must still stay out.
dotnet publish "$work/MyMethod" -c Release -o "$work/MyMethod-publish" "${restore_here[@]}" -v:q -nologo >"$work/template-build.log" 2>&1 \
  || { cat "$work/template-build.log"; fail "the project made by the template does not build"; }
say "built and published MyMethod against the package"
sample_out=$work/ScaleShift-out   # not samples/ScaleShift/bin, where an earlier build may have left files
dotnet build samples/ScaleShift -c Release -o "$sample_out" -p:PeftHostVersion="$version" -p:CopyLocalLockFileAssemblies=true "${restore_here[@]}" -v:q -nologo >"$work/sample-build.log" 2>&1 \
  || { cat "$work/sample-build.log"; fail "samples/ScaleShift does not build from the package"; }
template_out=$work/MyMethod/bin/Release/net10.0
# only_plugin_files FOLDER NAME: the folder holds NAME's .deps.json, .dll and .pdb, nothing else.
only_plugin_files() {
  [ "$(files_of "$1")" = "$(printf '%s.deps.json\n%s.dll\n%s.pdb' "$2" "$2" "$2")" ] \
    || fail "$1 holds more than the plugin's own files: $(files_of "$1" | tr '\n' ' ')"
}
only_plugin_files "$template_out" MyMethod
only_plugin_files "$work/MyMethod-publish" MyMethod
only_plugin_files "$sample_out" ScaleShift
say "built samples/ScaleShift against the package; the outputs hold only the plugins' own files"

# --- 3. the host loads, trains and saves with them ---------------------------------------------------
plugins=$work/plugins
mkdir -p "$plugins/mymethod" "$plugins/scale-shift"
cp "$template_out"/* "$plugins/mymethod/"
cp "$sample_out"/* "$plugins/scale-shift/"
listed=$("$pefthost" plugins --plugins "$plugins" --json)
for expect in '"id":"mymethod","version":"1.0.0","status":"loaded","methods":["MYMETHOD"]' \
              '"id":"scale-shift","version":"1.0.0","status":"loaded","methods":["SSF"]'; do
  grep -qF "$expect" <<<"$listed" || fail "pefthost plugins does not list $expect: $listed"
done
say "pefthost plugins: mymethod (MYMETHOD) and scale-shift (SSF) loaded"

"$pefthost" make-model --arch llama --size tiny --out "$work/llama" >/dev/null
"$pefthost" make-model --arch gpt2 --size tiny --out "$work/gpt2" >/dev/null
data=$repo/Host/Cli/bin/Release/net10.0/Demo/uppercase.train.jsonl
echo '{"input_ids": [[1, 5, 9, 30, 44, 2, 17, 80]]}' > "$work/inputs.json"

# train NAME MODEL CONFIG_JSON: a few steps, then the saved adapter's peft_type is checked.
train() {
  echo "$3" > "$work/$1.json"
  "$pefthost" train --plugins "$plugins" --model "$work/$2" --data "$data" --out "$work/$1" --adapter-config "$work/$1.json" \
    --set max_steps=3 --set per_device_train_batch_size=4 --set learning_rate=0.01 --set logging_steps=1 --threads 2 \
    >"$work/$1.log" 2>&1 || { cat "$work/$1.log"; fail "pefthost train with $1"; }
  local peft_type
  peft_type=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['peft_type'])" "$work/$1/adapter_config.json")
  [ -s "$work/$1/adapter_model.safetensors" ] && [ "$peft_type" = "$4" ] || fail "pefthost train with $1 saved no $4 adapter"
  say "trained $1: $(tail -1 "$work/$1.log")"
}
# logits OUT MODEL [ARGS...]
logits() {
  local out=$1 model=$2; shift 2
  "$pefthost" logits --plugins "$plugins" --model "$work/$model" --inputs "$work/inputs.json" --out "$work/$out.safetensors" "$@" >/dev/null
}
# check_reload NAME MODEL: the saved adapter loads back and changes the base's logits; merged = unmerged.
check_reload() {
  logits "$1-unmerged" "$2" --adapter "$work/$1"
  logits "$1-merged" "$2" --adapter "$work/$1" --merge
  local changed same
  changed=$(max_diff "$work/$2-base.safetensors" "$work/$1-unmerged.safetensors")
  same=$(max_diff "$work/$1-unmerged.safetensors" "$work/$1-merged.safetensors")
  below 1e-3 "$changed" || fail "$1: the trained adapter does not change the logits (max |diff| $changed)"
  below "$same" 1e-4 || fail "$1: merged logits differ from unmerged ones by $same"
  say "$1 reloaded: logits differ from the base by up to $changed; merged = unmerged to $same"
}
logits llama-base llama
logits gpt2-base gpt2

train mymethod llama '{"peft_type": "MYMETHOD", "task_type": "CAUSAL_LM", "target_modules": ["q_proj", "v_proj", "down_proj"], "r": 4, "alpha": 8}' MYMETHOD
check_reload mymethod llama

train ssf-llama llama '{"peft_type": "SSF", "task_type": "CAUSAL_LM", "target_modules": ["q_proj", "v_proj", "down_proj"]}' SSF
logits ssf-llama-unmerged llama --adapter "$work/ssf-llama"
changed=$(max_diff "$work/llama-base.safetensors" "$work/ssf-llama-unmerged.safetensors")
below 1e-3 "$changed" || fail "ssf-llama: the trained adapter does not change the logits (max |diff| $changed)"
# Llama's projections have no bias: SSF cannot merge there, and says so.
if refusal=$(logits ssf-llama-merged llama --adapter "$work/ssf-llama" --merge 2>&1); then
  fail "ssf-llama: a merge into Llama's bias-free projections was not refused"
fi
grep -q "have no bias" <<<"$refusal" || fail "ssf-llama: the merge refusal does not say why: $refusal"
say "ssf-llama reloaded: logits differ from the base by up to $changed; merge refused ($(tail -1 <<<"$refusal"))"
train ssf-gpt2 gpt2 '{"peft_type": "SSF", "task_type": "CAUSAL_LM", "target_modules": ["c_attn", "c_fc"]}' SSF
check_reload ssf-gpt2 gpt2

say "passed in $(( $(date +%s) - started )) s"
