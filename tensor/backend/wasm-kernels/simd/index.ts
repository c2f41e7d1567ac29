import { readFileSync } from 'node:fs';
import type { TensorInfo } from '@tensorflow/tfjs';

/**
 * The SIMD kernels of kernels.c, instantiated on the tfjs wasm backend's own WebAssembly.Memory, so they read
 * and write tensors where the backend keeps them. Arguments are heap byte offsets and sizes; see kernels.c.
 */
export interface SimdKernels {
  maxPoolGrad2x2(
    x: number,
    y: number,
    dy: number,
    dx: number,
    ...dims: [number, number, number, number, number, number]
  ): void;
  col2im(cols: number, dx: number, ...geometry: Geometry): void;
  im2colT(x: number, patches: number, ...geometry: Geometry): void;
  reluGrad(dy: number, x: number, dx: number, length: number): void;
  conv2dFewChannelsFilterGrad(x: number, dy: number, dw: number, part: number, ...geometry: ConvGeometry): void;
  maximum(a: number, b: number, out: number, length: number): void;
  minimum(a: number, b: number, out: number, length: number): void;
  addBias(x: number, bias: number, out: number, rows: number, channels: number): void;
  sumRows(x: number, out: number, acc: number, outer: number, inner: number): void;
  /** Heap byte offset of a tensor's data (take it after any allocation that may move nothing but grows the heap). */
  ptr(t: TensorInfo): number;
  /** Runs `body` with `bytes` of scratch on the backend's heap (8-byte aligned), freed afterwards. */
  withScratch<T>(bytes: number, body: (ptr: number) => T): T;
}

/** A convolution's geometry as kernels.c's few-channel kernels take it. */
export type ConvGeometry = [
  n: number,
  h: number,
  w: number,
  ci: number,
  kh: number,
  kw: number,
  oh: number,
  ow: number,
  co: number,
  sh: number,
  sw: number,
  top: number,
  left: number,
];

/** A convolution's geometry as kernels.c's col2im and im2col take it (no output channels). */
export type Geometry = [
  n: number,
  h: number,
  w: number,
  ci: number,
  kh: number,
  kw: number,
  oh: number,
  ow: number,
  sh: number,
  sw: number,
  top: number,
  left: number,
];

/** What the kernels need of the wasm backend (tfjs-backend-wasm 4.22's BackendWasm has all of it). */
export interface SimdHost {
  wasm: { asm?: { memory?: unknown }; _malloc(bytes: number): number; _free(ptr: number): void };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

/** The part of the WebAssembly JS API used here (the project's lib has no DOM types, where it is declared). */
interface WasmApi {
  Memory: abstract new (...args: never[]) => object;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const isSimdHost = (b: unknown): b is SimdHost => {
  const h = b as SimdHost;
  return (
    h?.wasm?.asm?.memory instanceof wasmApi.Memory &&
    typeof h.wasm._malloc === 'function' &&
    typeof h.dataIdMap?.get === 'function'
  );
};

/** Set TEMPERED_WASM_SIMD_KERNELS=0 to run the JS/composed fallbacks instead (benches, bisecting a bad result). */
const disabled = () => process.env.TEMPERED_WASM_SIMD_KERNELS === '0';

let bytes: Uint8Array | undefined;
const instances = new WeakMap<object, SimdKernels | null>();

/**
 * The kernels bound to `backend`'s heap, or undefined when the backend is not a wasm backend whose memory can be
 * shared, when WebAssembly SIMD is unavailable, or when they are switched off; callers then use their fallback.
 */
export function simdKernels(backend: unknown): SimdKernels | undefined {
  if (disabled() || !isSimdHost(backend)) return undefined;
  const cached = instances.get(backend);
  if (cached !== undefined) return cached ?? undefined;
  let kernels: SimdKernels | null = null;
  try {
    bytes ??= readFileSync(new URL('./kernels.wasm', import.meta.url));
    const module = new wasmApi.Module(bytes);
    const { exports } = new wasmApi.Instance(module, { env: { memory: backend.wasm.asm!.memory } });
    const f = exports as Record<string, (...args: number[]) => void>;
    kernels = {
      maxPoolGrad2x2: f.max_pool_grad_2x2,
      col2im: f.col2im,
      im2colT: f.im2col_t,
      reluGrad: f.relu_grad,
      conv2dFewChannelsFilterGrad: f.conv2d_few_channels_filter_grad,
      maximum: f.maximum,
      minimum: f.minimum,
      addBias: f.add_bias,
      sumRows: f.sum_rows,
      ptr: (t) => {
        const entry = backend.dataIdMap.get(t.dataId);
        if (entry === undefined) throw new Error('simd kernel input is not a tensor on the wasm backend');
        return entry.memoryOffset;
      },
      withScratch: (n, body) => {
        const ptr = backend.wasm._malloc(Math.max(8, n));
        try {
          return body(ptr);
        } finally {
          backend.wasm._free(ptr);
        }
      },
    };
  } catch {
    // A runtime without WebAssembly SIMD rejects the module: the fallbacks run.
    kernels = null;
  }
  instances.set(backend, kernels);
  return kernels ?? undefined;
}
