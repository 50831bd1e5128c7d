#!/usr/bin/env bash
# The SDK a third party writes a PEFT method with: packs PeftHost.Abstractions (the contract, its XML
# docs and the plugin build in build/) and PeftHost.Templates (dotnet new pefthost-tuner) into
# artifacts/packages/, both with one new prerelease version, <Version>-dev.<unix seconds>, so that a
# copy of an earlier pack in the NuGet cache is never used. Earlier packs are removed from the folder.
# Prints the version on its last line; also writes it to artifacts/packages/version.txt.
#   bash tools/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

out=artifacts/packages
base=$(sed -n 's:.*<Version>\(.*\)</Version>.*:\1:p' Abstractions/PeftHost.Abstractions.csproj)
[ -n "$base" ] || { echo "pack.sh: no <Version> in Abstractions/PeftHost.Abstractions.csproj" >&2; exit 1; }
stamp=$(date -u +%s)
previous=$(cat "$out/version.txt" 2>/dev/null || true)
# Two packs within one second still get distinct, increasing versions.
if [ -n "$previous" ] && [ "${previous##*-dev.}" -ge "$stamp" ] 2>/dev/null; then stamp=$((${previous##*-dev.} + 1)); fi
version="$base-dev.$stamp"

mkdir -p "$out"
rm -f "$out"/PeftHost.Abstractions.*.nupkg "$out"/PeftHost.Templates.*.nupkg
dotnet pack Abstractions/PeftHost.Abstractions.csproj -c Release -o "$out" -p:PackageVersion="$version" -v:q -nologo
dotnet pack templates/PeftHost.Templates.csproj -c Release -o "$out" -p:PackageVersion="$version" -v:q -nologo
echo "$version" > "$out/version.txt"
echo "packed in $out: PeftHost.Abstractions.$version.nupkg, PeftHost.Templates.$version.nupkg"
echo "$version"
