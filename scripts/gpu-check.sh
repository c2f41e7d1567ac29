#!/usr/bin/env bash
# GPU readiness check, for a host with an NVIDIA GPU and its driver (run from a clone after `npm ci`):
#   bash scripts/gpu-check.sh
# Builds the GPU variant (npm run setup:tensorflow -- --gpu: tfjs-node-gpu on TensorFlow 2.21 and the CUDA 12
# wheels from PyPI), confirms that TensorFlow uses the GPU (isUsingGpuDevice), runs the bench on tensorflow-gpu
# (both workloads) and a short reference adversarial training (1 epoch, 6000 images), and prints one JSON line:
#   {"ok":true,"driver":"…","gpu":true,"bench":[…],"train":{…},"seconds":N}
# Memory growth is on (TF_FORCE_GPU_ALLOW_GROWTH=true), so the card is shared rather than taken whole.
# Sized for under 10 minutes: ~3 GB of wheels at registry speed, a 20 s build, 2×10 s of bench, ~1 min training.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)
export TF_FORCE_GPU_ALLOW_GROWTH=true
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-1}"

fail() { # one JSON line naming the step that failed, exit 1
  node -e 'process.stdout.write(JSON.stringify({ ok: false, step: process.argv[1], error: process.argv[2] }) + "\n")' "$1" "$2"
  exit 1
}

driver=$(sed -n 's/.*Kernel Module *\([0-9.]*\).*/\1/p' /proc/driver/nvidia/version 2>/dev/null | head -1)
[[ -n "$driver" ]] || fail driver 'no NVIDIA driver loaded (/proc/driver/nvidia/version is missing)'
[[ -d node_modules/@tensorflow/tfjs-node-gpu ]] || fail install 'node_modules/@tensorflow/tfjs-node-gpu is missing: run npm ci first'

npm run --silent setup:tensorflow -- --gpu >&2 || fail setup 'npm run setup:tensorflow -- --gpu failed (its output is above)'

gpu=$(node -e '
  const tf = require("@tensorflow/tfjs-node-gpu");
  const on = tf.backend().isUsingGpuDevice;
  // One op on the device proves more than the flag: a matmul big enough to need it.
  const a = tf.randomNormal([1024, 1024]);
  tf.matMul(a, a).dataSync();
  process.stdout.write(String(on));
' 2>/dev/null | tail -1)
[[ "$gpu" == "true" ]] || fail gpu "tfjs-node-gpu loaded but isUsingGpuDevice is ${gpu:-unknown}: check the driver supports CUDA 12 (nvidia-smi)"

bench=$(for model in reference small-resnet; do
  npm run --silent bench -- --json --engines tensorflow-gpu --seconds 5 --rounds 1 --model "$model" 2>/dev/null |
    sed "s/^{/{\"model\":\"$model\",/"
done | paste -sd, -)
[[ -n "$bench" ]] || fail bench 'the bench printed nothing on tensorflow-gpu'

train=$(TEMPERED_BACKEND=tensorflow-gpu npm run --silent train:reference -- --mode adversarial --epochs 1 \
  --train-size 6000 --out .tempered/reference/gpu-check --json 2>/dev/null | tail -1)
[[ "$train" == \{* ]] || fail train 'train:reference on tensorflow-gpu printed no result (needs Fashion-MNIST in /usr/share/datasets/fashion-mnist)'

node -e '
  const [driver, bench, train, start] = process.argv.slice(1);
  const out = { ok: true, driver, gpu: true, bench: JSON.parse(`[${bench}]`), train: JSON.parse(train),
    seconds: Math.round(Date.now() / 1000 - Number(start)) };
  process.stdout.write(JSON.stringify(out) + "\n");
' "$driver" "$bench" "$train" "$start"
