#!/usr/bin/env bash
# Prints what Abstractions' public surface differs by from PublicAPI.Shipped.txt + PublicAPI.Unshipped.txt,
# as lines for PublicAPI.Unshipped.txt (the analyzer's code fix does the same in an IDE):
#   added symbols as they are, changed or removed ones as *REMOVED*<line>.
# Review them, then paste them into Abstractions/PublicAPI.Unshipped.txt: the surface of the contract
# changes only by such a reviewed diff (the build fails with RS0016 / RS0017 until then).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
dotnet build Abstractions/PeftHost.Abstractions.csproj -c Release --no-incremental -p:TreatWarningsAsErrors=false >"$log" 2>&1 || true
{
  grep -oE "RS0016: Symbol '.*' is not part of the declared public API" "$log" | sed -E "s/^RS0016: Symbol '(.*)' is not part of the declared public API$/\1/" || true
  grep -oE "RS0017: Symbol '.*' is part of the declared API, but" "$log" | sed -E "s/^RS0017: Symbol '(.*)' is part of the declared API, but$/*REMOVED*\1/" || true
} | LC_ALL=C sort -u
