#!/usr/bin/env bash
# Runs every benchmark of the issues, one after the other (each prints figures; the last line of each
# is one JSON object). Build first; run on a quiet machine: all of them time wall clock.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build Host.sln -c Release -v q
pefthost=Host/Cli/bin/Release/net10.0/pefthost
"$pefthost" bench reload --count 100 --json   # plugin hot reload: latency, leaked load contexts, RSS growth
"$pefthost" bench memory --json               # 1000 adapter load/unload rounds and 1000 plugin reloads: RSS and live tensors flat, leaked contexts
"$pefthost" bench models --json               # small Llama forward 4x128 and 32-token generation
"$pefthost" bench lora --json                 # LoRA unmerged/merged vs base, adapter load, hotswap memory
"$pefthost" bench qlora --json                # 4-bit base: bits per weight, base memory, NF4 logits error and forward time vs float32
"$pefthost" bench vulkan --json               # Vulkan matvec GB/s, prefill and decode tokens/s per type
"$pefthost" bench generate --json             # prefill/decode tokens/s: torch f32/bf16, llama f16/q8_0/q4_0 (vs bare LLamaSharp), vulkan f16/q4_0, each +/- LoRA
"$pefthost" bench chat-template --json        # Jinja chat template: parse, render of a typical chat (Llama 3.1 template)
"$pefthost" bench train --json                # LoRA training step 4x128 and 4x512, with/without gradient checkpointing, peak RSS, growth over 200 steps
"$pefthost" bench serve --json                # OpenAI server, 8 clients with a LoRA adapter each: tokens/s concurrent vs serial, TTFT and latency p50/p99; again with 10 hotswaps and a plugin reload (errors, torn)
