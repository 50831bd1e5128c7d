#!/usr/bin/env bash
# The README's test command: checks (and, as root, installs) the Debian packages the tests need,
# then builds and runs every test project. Exits non-zero when set-up, the build or a test fails.
# Without arguments it then runs the SDK check (tools/sdk-check.sh: pack, template, sample, plugins
# loaded and trained by pefthost); with arguments (a filter while iterating) it runs only the tests.
#   bash tools/test.sh [extra dotnet test arguments, e.g. --filter FullyQualifiedName~Lora]
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc: the one-function MKL vendor shim (build/native/mkl_vendor_shim.c).
# Vulkan: Mesa's lavapipe (a real Vulkan 1.3 device on the CPU), the loader, glslc (the SPIR-V
# check) and the Khronos validation layers (the Vulkan tests run with them).
# python3: the SDK check reads packages and logits files with its standard library.
apt_packages=(ca-certificates gcc mesa-vulkan-drivers libvulkan1 glslc vulkan-validationlayers python3)
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
    echo "The tests need these Debian packages, which are not installed: ${missing[*]}" >&2
    echo "Install them (sudo apt-get install ${missing[*]}), or run this script as root to have it install them." >&2
    exit 1
  fi
fi

command -v dotnet >/dev/null || { echo "The .NET 10 SDK is required: dotnet is not on PATH." >&2; exit 1; }
echo "dotnet $(dotnet --version)"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Vulkan tests run with the Khronos validation layer on (a validation error fails the test).
export PEFTHOST_VULKAN_VALIDATION=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
dotnet test Host.sln -c Release "$@" 2>&1 | tee "$log" || status=$?

sdk_status=0
if [ $# -eq 0 ]; then bash tools/sdk-check.sh || sdk_status=$?; fi

[ "$sdk_status" -eq 0 ] || echo "the SDK check (tools/sdk-check.sh) failed: see its FAILED line above" >&2
# One plain summary line for whoever reads the log.
passed=$(grep -oE 'Passed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
failed=$(grep -oE 'Failed: +[0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
echo "tests: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ] || [ "$sdk_status" -ne 0 ]; then exit 1; fi
