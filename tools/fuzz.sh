#!/usr/bin/env bash
# Fuzzes one parser of outside data with AFL++ (Debian's afl++) through SharpFuzz:
#   bash tools/fuzz.sh TARGET SECONDS        e.g. bash tools/fuzz.sh gguf 600
#   bash tools/fuzz.sh --list                the targets (tests/PeftHost.Fuzz/Targets)
# Publishes tests/PeftHost.Fuzz, instruments the PeftHost assemblies and Microsoft.ML.Tokenizers with the
# SharpFuzz command-line tool (a local dotnet tool, dotnet-tools.json), runs afl-fuzz for SECONDS from the
# committed seed corpus (tests/PeftHost.Fuzz/Corpus/TARGET), then replays every crash and hang in-process to
# print its exception. Prints "fuzz TARGET: N executions, C crashes, H hangs" and appends a line to
# artifacts/fuzz/results.tsv; exits non-zero on a crash or a hang. Findings: artifacts/fuzz/findings/TARGET.
# Set FUZZ_TIMEOUT_MS (default 2000: an input running longer is a hang) or FUZZ_MAX_LEN (default 65536 bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(afl++)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing missing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "Fuzzing needs these Debian packages, which are not installed: ${missing[*]}" >&2
    echo "Install them (sudo apt-get install ${missing[*]}), or run this script as root to have it install them." >&2
    exit 1
  fi
fi
command -v dotnet >/dev/null || { echo "The .NET 10 SDK is required: dotnet is not on PATH." >&2; exit 1; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

out=artifacts/fuzz
bin=$out/bin
replay=$out/replay
if [ "${1:-}" = "--list" ]; then
  dotnet run --project tests/PeftHost.Fuzz -c Release -- --list
  exit 0
fi
if [ $# -lt 2 ]; then
  echo "usage: bash tools/fuzz.sh TARGET SECONDS   (bash tools/fuzz.sh --list for the targets)" >&2
  exit 2
fi
target=$1
seconds=$2
corpus=tests/PeftHost.Fuzz/Corpus/$target
[ -d "$corpus" ] || { echo "No seed corpus $corpus: unknown target '$target' (bash tools/fuzz.sh --list)." >&2; exit 2; }

# A fresh publish every run: instrumentation rewrites the assemblies in place. Findings are replayed
# with a plain copy (instrumented code runs only under SharpFuzz's fork server).
rm -rf "$bin" "$replay"
dotnet tool restore >/dev/null
dotnet publish tests/PeftHost.Fuzz -c Release -o "$replay" -p:UseAppHost=false >/dev/null
cp -r "$replay" "$bin"
for dll in "$bin"/PeftHost.*.dll "$bin"/Microsoft.ML.Tokenizers.dll; do
  case "$(basename "$dll")" in PeftHost.Fuzz.dll) continue ;; esac
  dotnet sharpfuzz "$dll" >/dev/null
done

findings=$out/findings/$target
rm -rf "$findings"
mkdir -p "$findings"
dict=tests/PeftHost.Fuzz/Dictionaries/$target.dict
dict_args=()
[ -f "$dict" ] && dict_args=(-x "$dict")

# SharpFuzz's fork server is the .NET process itself (no fork of a native binary to check); the
# GC heap limit turns an unbounded allocation into an OutOfMemoryException, which is a crash.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# The targets' scratch files live in memory, in a folder of this run's own (removed at the end: AFL++ stops
# the target process with a signal, so it cannot clean up itself).
scratch=$(mktemp -d /dev/shm/pefthost-fuzz.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
export DOTNET_GCHeapHardLimit=0x40000000 PEFTHOST_FUZZ_SCRATCH=$scratch
timeout_ms=${FUZZ_TIMEOUT_MS:-2000}
max_len=${FUZZ_MAX_LEN:-65536}
start=$(date +%s)
afl-fuzz -i "$corpus" -o "$findings" -V "$seconds" -t "$timeout_ms" -m none -G "$max_len" "${dict_args[@]}" \
  -- dotnet "$bin/PeftHost.Fuzz.dll" "$target" > "$findings/afl.log" 2>&1 || {
  echo "afl-fuzz failed (log: $findings/afl.log):" >&2
  tail -20 "$findings/afl.log" >&2
  exit 1
}
elapsed=$(( $(date +%s) - start ))

stats=$findings/default/fuzzer_stats
stat() { awk -F' *: *' -v k="$1" '$1 == k { print $2 }' "$stats"; }
execs=$(stat execs_done)
crashes=$(stat saved_crashes)
hangs=$(stat saved_hangs)
paths=$(stat corpus_count)

# Each finding replayed alone (a stack overflow or an access violation ends its process): its exception, for the regression test.
for kind in crashes hangs; do
  for f in "$findings/default/$kind"/id:*; do
    [ -e "$f" ] || continue
    echo "== $kind of $target: $f"
    timeout 60 dotnet "$replay/PeftHost.Fuzz.dll" "$target" --replay "$f" 2>&1 | grep -v '^   at System\.' | head -12 || true
  done
done

mkdir -p "$out"
[ -f "$out/results.tsv" ] || printf 'date\ttarget\tseconds\texecutions\tcorpus\tcrashes\thangs\n' > "$out/results.tsv"
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%F)" "$target" "$elapsed" "$execs" "$paths" "$crashes" "$hangs" >> "$out/results.tsv"
echo "fuzz $target: $execs executions in ${elapsed}s, $paths corpus entries, $crashes crashes, $hangs hangs"
[ "$crashes" = 0 ] && [ "$hangs" = 0 ]
