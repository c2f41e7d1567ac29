#!/usr/bin/env bash
# Rebuilds kernels.wasm from kernels.c (clang + lld with the wasm32 target: Debian's clang and lld packages).
# The binary is committed, so installs and CI never need a compiler; test/unit/tensor/backend/simd-kernels.test.ts
# rebuilds it when clang is present and fails if the committed binary is stale.
# Usage: bash tensor/backend/wasm-kernels/simd/build.sh [OUT]   (default: kernels.wasm next to this script)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/kernels.wasm}"
clang --target=wasm32 -O3 -msimd128 -mbulk-memory -nostdlib -ffreestanding \
  -Wall -Wextra -Werror \
  -Wl,--no-entry -Wl,--import-memory -Wl,--strip-all \
  -o "$out" "$here/kernels.c"
# The module shares the tfjs backend's heap: it must own no memory there (no data segments, no use of the shadow
# stack, whose pointer wasm-ld places inside the backend's heap).
if command -v wasm-objdump > /dev/null; then
  if wasm-objdump -x "$out" | grep -q '^Data\['; then
    echo "build.sh: $out has a data section; kernels.c must not use static data" >&2
    exit 1
  fi
  if wasm-objdump -d "$out" | grep -q 'global\.[gs]et'; then
    echo "build.sh: $out touches a global (the shadow stack); keep kernels.c free of stack arrays" >&2
    exit 1
  fi
fi
