import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../../tensor/backend';
import {
  conv2dBackpropInput,
  conv2dBackpropInputCol2im,
  originalWasmKernel,
} from '../../../../tensor/backend/wasm-kernels';
import type { HeapBackend } from '../../../../tensor/backend/wasm-kernels/compose';
import { simdKernels } from '../../../../tensor/backend/wasm-kernels/simd';
import { buildReferenceCnn } from '../../../../tensor/models/reference-cnn';

/**
 * Every kernel that tensor/backend/wasm-kernels adds or replaces, run on wasm and compared with the cpu backend
 * on the same inputs, through the public ops and their gradients (so the engine's own dispatch is exercised).
 */

type Case = { name: string; run: () => tf.Tensor | tf.Tensor[] };

/** Runs `f` on one backend and returns plain arrays, leaving no tensors behind. */
async function on(
  backend: 'wasm' | 'cpu',
  f: () => tf.Tensor | tf.Tensor[],
): Promise<{ shape: number[]; v: Float32Array }[]> {
  await tf.setBackend(backend);
  const before = tf.memory().numTensors;
  const out = tf.tidy(f);
  const list = Array.isArray(out) ? out : [out];
  const res = list.map((t) => ({ shape: t.shape, v: t.dataSync() as Float32Array }));
  tf.dispose(list);
  assert.equal(tf.memory().numTensors, before, `tensors leaked on ${backend}`);
  return res;
}

function assertClose(
  a: { shape: number[]; v: Float32Array }[],
  b: { shape: number[]; v: Float32Array }[],
  what: string,
) {
  assert.equal(a.length, b.length);
  for (let k = 0; k < a.length; k++) {
    assert.deepEqual(a[k].shape, b[k].shape, `${what}: output ${k} shape`);
    let scale = 1e-6;
    for (const x of b[k].v) if (!Number.isNaN(x)) scale = Math.max(scale, Math.abs(x));
    for (let i = 0; i < a[k].v.length; i++) {
      if (Number.isNaN(a[k].v[i]) && Number.isNaN(b[k].v[i])) continue;
      const d = Math.abs(a[k].v[i] - b[k].v[i]);
      if (!(d <= 1e-4 * scale + 1e-5)) {
        assert.fail(`${what}: output ${k}[${i}] wasm ${a[k].v[i]} vs cpu ${b[k].v[i]} (scale ${scale})`);
      }
    }
  }
}

async function compare(c: Case) {
  const wasm = await on('wasm', c.run);
  const cpu = await on('cpu', c.run);
  assertClose(wasm, cpu, c.name);
}

/** Seeded inputs, created inside the backend that runs (each call makes fresh tensors). */
const rand = (shape: number[], seed: number, lo = -1, hi = 1) => tf.randomUniform(shape, lo, hi, 'float32', seed);

const convCases: {
  x: [number, number, number, number];
  f: [number, number, number, number];
  s: number | [number, number];
  pad: 'valid' | 'same';
}[] = [
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: 'valid' },
  { x: [2, 7, 9, 3], f: [3, 3, 3, 4], s: 1, pad: 'same' },
  { x: [3, 9, 8, 2], f: [3, 2, 2, 5], s: 2, pad: 'valid' },
  { x: [3, 9, 8, 2], f: [3, 3, 2, 5], s: 2, pad: 'same' },
  { x: [2, 10, 7, 1], f: [3, 3, 1, 6], s: [2, 1], pad: 'same' },
  // Few taps and co a multiple of 4: the direct SIMD filter gradient (padding, strides, co > 4).
  { x: [3, 9, 8, 1], f: [3, 3, 1, 8], s: 2, pad: 'same' },
  { x: [2, 7, 9, 3], f: [3, 3, 3, 12], s: [1, 2], pad: 'same' },
  // kh·kw·ci > co: the filter gradient takes the convolution form.
  { x: [2, 8, 6, 8], f: [3, 3, 8, 2], s: 1, pad: 'valid' },
  { x: [2, 9, 7, 8], f: [2, 3, 8, 3], s: 2, pad: 'same' },
];

// Every case runs with the SIMD kernels (simd/kernels.c, the default) and with the JS/composed fallbacks.
for (const simd of ['on', 'off'] as const)
  describe(`wasm training kernels match the cpu backend (SIMD kernels ${simd})`, () => {
    before(async () => {
      await initBackend('wasm', { log: () => {} });
      process.env.TEMPERED_WASM_SIMD_KERNELS = simd === 'on' ? '1' : '0';
      assert.equal(simdKernels(tf.findBackend('wasm')) !== undefined, simd === 'on', 'SIMD kernels load on wasm');
    });
    after(async () => {
      delete process.env.TEMPERED_WASM_SIMD_KERNELS;
      await tf.setBackend('wasm');
    });

    for (const { x, f, s, pad } of convCases) {
      const label = `x${x.join('x')} f${f.join('x')} s${s} ${pad}`;
      it(`conv2d gradients (Conv2DBackpropFilter, Conv2DBackpropInput) ${label}`, async () => {
        await compare({
          name: label,
          run: () => {
            const xt = rand(x, 1) as tf.Tensor4D;
            const ft = rand(f, 2) as tf.Tensor4D;
            const g = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
              tf
                .conv2d(a as tf.Tensor4D, b as tf.Tensor4D, s, pad)
                .square()
                .sum(),
            );
            return g([xt, ft]);
          },
        });
      });
    }

    it('conv2dTranspose (Conv2DBackpropInput) with stride 2', async () => {
      await compare({
        name: 'conv2dTranspose',
        run: () =>
          tf.conv2dTranspose(
            rand([2, 4, 5, 3], 3) as tf.Tensor4D,
            rand([3, 3, 2, 3], 4) as tf.Tensor4D,
            [2, 8, 10, 2],
            2,
            'same',
          ),
      });
    });

    it('conv2dTranspose with a dy larger than the output needs: reads its first positions, as tfjs does', async () => {
      // tfjs-core's own spec "input=8x8x8,output=4x4x8,f=8,s=1,inDepth=8,p=same vec4": dy 8×8 for a 4×4 output.
      await compare({
        name: 'conv2dTranspose, larger dy',
        run: () =>
          tf.conv2dTranspose(
            rand([1, 8, 8, 8], 30) as tf.Tensor4D,
            rand([8, 8, 8, 8], 31) as tf.Tensor4D,
            [1, 4, 4, 8],
            1,
            'same',
          ),
      });
      await compare({
        name: 'conv2dTranspose stride 2, larger dy',
        run: () =>
          tf.conv2dTranspose(
            rand([2, 6, 7, 3], 32) as tf.Tensor4D,
            rand([3, 3, 2, 3], 33) as tf.Tensor4D,
            [2, 8, 10, 2],
            2,
            'same',
          ),
      });
    });

    it('conv2dTranspose with a dy smaller than the output needs: an error naming both sizes', async () => {
      await tf.setBackend('wasm');
      const start = tf.memory().numTensors;
      assert.throws(
        () =>
          tf.tidy(() =>
            tf.conv2dTranspose(
              rand([1, 3, 3, 2], 34) as tf.Tensor4D,
              rand([3, 3, 2, 2], 35) as tf.Tensor4D,
              [1, 8, 8, 2],
              2,
              'same',
            ),
          ),
        /dy is 3×3 .* needs at least 4×4/,
      );
      assert.equal(tf.memory().numTensors, start);
    });

    for (const { x, f, s, pad } of convCases) {
      it(`Conv2DBackpropInput: heap scatter and convolution form agree, x${x.join('x')} f${f.join('x')} s${s} ${pad}`, async () => {
        await tf.setBackend('wasm');
        const start = tf.memory().numTensors;
        tf.tidy(() => {
          const ft = rand(f, 2) as tf.Tensor4D;
          const dy = rand(tf.conv2d(tf.zeros(x) as tf.Tensor4D, ft, s, pad).shape, 3) as tf.Tensor4D;
          const attrs = { strides: s, pad, dataFormat: 'NHWC' as const, inputShape: x };
          const scatter = tf
            .engine()
            .makeTensorFromTensorInfo(conv2dBackpropInputCol2im(dy, ft, attrs, tf.backend() as unknown as HeapBackend));
          const conv = conv2dBackpropInput(dy, ft, attrs);
          const a = scatter.dataSync();
          const b = conv.dataSync();
          assert.deepEqual(scatter.shape, conv.shape);
          for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-4, `${i}: ${a[i]} vs ${b[i]}`);
        });
        assert.equal(tf.memory().numTensors, start);
      });
    }

    it('Identity and same-dtype Cast share data that outlives the source; real casts convert', async () => {
      await tf.setBackend('wasm');
      const start = tf.memory().numTensors;
      const buffers = tf.memory().numDataBuffers;
      const src = tf.tensor([1.5, -2, 0, 3], [2, 2]);
      const copy = tf.engine().runKernel(tf.Identity, { x: src }, {}) as tf.Tensor;
      const same = tf.cast(src, 'float32');
      const ints = tf.cast(src, 'int32');
      const cloned = tf.clone(src);
      src.dispose();
      assert.deepEqual(Array.from(copy.dataSync()), [1.5, -2, 0, 3]);
      assert.deepEqual(Array.from(same.dataSync()), [1.5, -2, 0, 3]);
      assert.deepEqual(Array.from(cloned.dataSync()), [1.5, -2, 0, 3]);
      assert.equal(ints.dtype, 'int32');
      assert.deepEqual(Array.from(ints.dataSync()), [1, -2, 0, 3]);
      tf.dispose([copy, same, ints, cloned]);
      assert.equal(tf.memory().numTensors, start);
      assert.equal(tf.memory().numDataBuffers, buffers, 'shared data freed with its last tensor');
    });

    for (const [shape, pad] of [
      [[2, 8, 6, 3], 'valid'],
      [[3, 7, 9, 2], 'valid'],
      [[2, 6, 4, 5], 'same'],
    ] as const) {
      it(`maxPool 2x2 stride 2 gradient ${shape.join('x')} ${pad}`, async () => {
        await compare({
          name: `maxPool ${shape} ${pad}`,
          run: () =>
            tf.grad((a: tf.Tensor) =>
              tf
                .maxPool(a as tf.Tensor4D, 2, 2, pad)
                .mul(rand([1], 9, 1, 2))
                .sum(),
            )(rand([...shape], 5)),
        });
      });
    }

    it('maxPool gradient sends ties to the first maximum (relu zeros, equal values)', async () => {
      await compare({
        name: 'maxPool ties',
        run: () => {
          const x = tf.relu(tf.round(rand([2, 6, 6, 3], 6, -2, 2)));
          const w = rand([2, 3, 3, 3], 7);
          return tf.grad((a: tf.Tensor) =>
            tf
              .maxPool(a as tf.Tensor4D, 2, 2, 'valid')
              .mul(w)
              .sum(),
          )(x);
        },
      });
    });

    it('maxPool gradients the fast path does not cover run the original wasm kernel', async () => {
      // wasm's own MaxPoolGrad differs from cpu on overlapping and padded windows, so compare with the original.
      await tf.setBackend('wasm');
      const original = originalWasmKernel(tf.MaxPoolGrad);
      assert.ok(original, 'the original MaxPoolGrad was captured');
      for (const [shape, size, stride, pad] of [
        [[2, 5, 6, 2], 3, 1, 'same'],
        [[2, 5, 5, 2], 2, 2, 'same'],
        [[1, 6, 6, 3], 3, 2, 'valid'],
      ] as const) {
        const start = tf.memory().numTensors;
        tf.tidy(() => {
          const x = rand([...shape], 8) as tf.Tensor4D;
          const y = tf.maxPool(x, size, stride, pad);
          const dy = rand(y.shape, 9);
          const attrs = { filterSize: size, strides: stride, pad };
          const ours = tf.engine().runKernel(tf.MaxPoolGrad, { dy, input: x, output: y }, attrs) as tf.Tensor;
          const info = original.kernelFunc({ inputs: { dy, input: x, output: y }, attrs, backend: tf.backend() });
          const theirs = tf.engine().makeTensorFromTensorInfo(info as tf.TensorInfo);
          assert.deepEqual(ours.dataSync(), theirs.dataSync(), `${shape} ${size} ${stride} ${pad}`);
        });
        assert.equal(tf.memory().numTensors, start);
      }
    });

    it('matMul with the same data as b under two shapes does not reuse a stale XNNPACK packing', async () => {
      await compare({
        name: 'reshaped b',
        run: () => {
          const b = rand([12, 30], 17);
          const a1 = rand([2, 12], 18);
          const a2 = rand([3, 60], 19);
          return [tf.matMul(a1, b), tf.matMul(a2, tf.reshape(b, [60, 6])), tf.matMul(a1, b)];
        },
      });
    });

    for (const [ta, tb] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ] as const) {
      it(`matMul transposeA=${ta} transposeB=${tb}, plain, batched and fused`, async () => {
        await compare({
          name: `matMul ${ta} ${tb}`,
          run: () => {
            const a = rand(ta ? [7, 5] : [5, 7], 10);
            const b = rand(tb ? [3, 7] : [7, 3], 11);
            const a3 = rand(ta ? [2, 7, 5] : [2, 5, 7], 12);
            const b3 = rand(tb ? [2, 3, 7] : [2, 7, 3], 13);
            const bias = rand([3], 14);
            return [
              tf.matMul(a, b, ta, tb),
              tf.matMul(a3, b3, ta, tb),
              tf.fused.matMul({
                a: a as tf.Tensor2D,
                b: b as tf.Tensor2D,
                transposeA: ta,
                transposeB: tb,
                bias,
                activation: 'relu',
              }),
            ];
          },
        });
      });
    }

    it('sum over leading axes (and other reductions through the original)', async () => {
      await compare({
        name: 'sum',
        run: () => {
          const x = rand([3, 4, 5, 6], 15);
          return [
            tf.sum(x, [0, 1, 2]),
            tf.sum(x, [0, 1], true),
            tf.sum(x, 0),
            tf.sum(x, -1),
            tf.sum(x),
            tf.sum(x, [1, 2]),
          ];
        },
      });
    });

    it('maximum, minimum and per-channel bias adds (fast paths) and the broadcasts that go to the original', async () => {
      // wasm's own Maximum/Minimum drop a NaN (std::max); the SIMD kernels propagate it, as the cpu backend does.
      const nan = simd === 'on' ? NaN : 5;
      await compare({
        name: 'elementwise',
        run: () => {
          const a = tf.concat([tf.tensor1d([nan, 1, -0, 0, 2]), rand([38], 24)]).reshape([43]);
          const b = tf.concat([tf.tensor1d([1, nan, 0, -0, 2]), rand([38], 25)]).reshape([43]);
          const x = rand([2, 3, 5, 7], 26);
          const x6 = rand([2, 3, 5, 6], 29);
          return [
            tf.maximum(a, b),
            tf.minimum(a, b),
            tf.maximum(x, rand([7], 27)),
            tf.minimum(x, 0.1),
            tf.add(x, rand([7], 28)),
            tf.add(rand([1, 1, 1, 7], 30), x),
            tf.add(x6, rand([6], 31)),
            tf.add(x, rand([5, 1], 32)),
            tf.add(x, x),
            tf.add(tf.tensor1d([1, 2], 'int32'), tf.tensor2d([[3, 4]], [1, 2], 'int32')).toFloat(),
          ];
        },
      });
    });

    it('relu gradient: zero at and below zero, dy above, through one and two gradient levels', async () => {
      await compare({
        name: 'relu grad',
        run: () => {
          const x = tf.concat([tf.tensor1d([0, -0, -1e-30, 1e-30, 2, -3]), rand([37], 20)]);
          const dy = rand([43], 21);
          const g = tf.grad((a: tf.Tensor) => tf.relu(a).mul(dy).sum())(x);
          // Second order: d/dv of <grad relu(x) at x applied to v, w> is relu'(x) · w.
          const gg = tf.grad((v: tf.Tensor) =>
            tf
              .grad((a: tf.Tensor) => tf.relu(a).mul(v).sum())(x)
              .mul(dy)
              .sum(),
          )(rand([43], 22));
          return [g, gg, tf.grad((a: tf.Tensor) => tf.relu(a).sum())(rand([2, 3, 5, 7], 23))];
        },
      });
    });

    it('relu gradient propagates NaN like tfjs: a NaN x, and a NaN or ±Inf dy where x ≤ 0', async () => {
      await compare({
        name: 'relu grad NaN',
        run: () => {
          // 12 lanes: three SIMD groups of four, then a scalar tail of one (13 values).
          const x = tf.tensor1d([NaN, -1, 0, 2, -1, 0, -2, 3, NaN, -5, 1, -1, NaN]);
          const dy = tf.tensor1d([1, NaN, Infinity, NaN, -Infinity, -2, 0, 5, 0, -0, NaN, 4, 2]);
          const g = tf.grad((a: tf.Tensor) => tf.relu(a).mul(dy).sum())(x);
          // tfjs's gradient on the cpu backend: dy · step(x), NaN where x is NaN or dy is not finite at x ≤ 0.
          return [g];
        },
      });
    });

    it('reference CNN: loss gradients w.r.t. the input and every weight', async () => {
      const model = buildReferenceCnn({ seed: 3 });
      try {
        const weights = model.trainableWeights.map((w) => w.read());
        await compare({
          name: 'reference CNN',
          run: () => {
            const x = rand([4, 28, 28, 1], 16, 0, 1);
            const y = tf.oneHot(tf.tensor1d([1, 5, 7, 9], 'int32'), 10);
            const loss = (xx: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, model.apply(xx) as tf.Tensor) as tf.Scalar;
            const gx = tf.grad(loss)(x);
            const { grads } = tf.variableGrads(() => loss(x));
            return [gx, ...model.trainableWeights.map((w) => grads[w.originalName])];
          },
        });
        assert.equal(weights.length, 8);
      } finally {
        model.dispose();
      }
    });
  });
