// How many parameters a model.json's topology would allocate, computed from the JSON alone, so a 3 KB file that
// declares a huge Dense layer is refused before tfjs builds (and fills) its weights.

/** The default parameter budget of a loaded model: 50 million (200 MB of float32). */
export const MAX_MODEL_PARAMS = 50_000_000;

type Shape = (number | null)[];
interface LayerJson {
  class_name?: string;
  name?: string;
  config?: Record<string, unknown>;
  inbound_nodes?: unknown[];
}

const pair = (v: unknown, fallback: number): [number, number] =>
  Array.isArray(v) ? [Number(v[0]), Number(v[1] ?? v[0])] : typeof v === 'number' ? [v, v] : [fallback, fallback];
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : NaN);
const last = (s: Shape) => Number(s[s.length - 1] ?? NaN);

/** Output length of a window over `n` (conv/pool), as Keras computes it. */
function windowed(n: number | null, k: number, s: number, padding: unknown): number | null {
  if (n === null) return null;
  return padding === 'same' ? Math.ceil(n / s) : Math.floor((n - k) / s) + 1;
}

/** One layer: its output shape and the parameters it creates, from its config and input shapes. */
function layer(l: LayerJson, inputs: Shape[]): { shape: Shape; params: number } {
  const c = l.config ?? {};
  const input = inputs[0];
  const type = l.class_name ?? '';
  const bias = c.use_bias === false ? 0 : 1;
  switch (type) {
    case 'InputLayer':
      return { shape: (c.batch_input_shape ?? c.batchInputShape ?? [null]) as Shape, params: 0 };
    case 'Dense': {
      const units = num(c.units);
      return { shape: [...input.slice(0, -1), units], params: last(input) * units + bias * units };
    }
    case 'Conv2D':
    case 'DepthwiseConv2D':
    case 'SeparableConv2D': {
      const [kh, kw] = pair(c.kernel_size, 1);
      const [sh, sw] = pair(c.strides, 1);
      const inC = last(input);
      const mult = type === 'Conv2D' ? 0 : num(c.depth_multiplier ?? 1);
      const out = type === 'DepthwiseConv2D' ? inC * mult : num(c.filters);
      const params =
        type === 'Conv2D'
          ? kh * kw * inC * out
          : type === 'DepthwiseConv2D'
            ? kh * kw * inC * mult
            : kh * kw * inC * mult + inC * mult * out;
      return {
        shape: [input[0], windowed(input[1], kh, sh, c.padding), windowed(input[2], kw, sw, c.padding), out],
        params: params + bias * out,
      };
    }
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      const [kh, kw] = pair(c.pool_size, 2);
      const [sh, sw] = pair(c.strides ?? c.pool_size, 2);
      return {
        shape: [input[0], windowed(input[1], kh, sh, c.padding), windowed(input[2], kw, sw, c.padding), input[3]],
        params: 0,
      };
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
      return { shape: [input[0], input[3]], params: 0 };
    case 'Flatten':
      return { shape: [input[0], input.slice(1).reduce<number>((a, b) => a * Number(b), 1)], params: 0 };
    case 'Reshape':
      return { shape: [input[0], ...((c.target_shape as number[]) ?? [])], params: 0 };
    case 'BatchNormalization':
    case 'LayerNormalization':
      return { shape: input, params: 4 * last(input) };
    case 'Embedding':
      return { shape: [...input, num(c.output_dim)], params: num(c.input_dim) * num(c.output_dim) };
    case 'Concatenate':
      return { shape: [...input.slice(0, -1), inputs.reduce((a, s) => a + last(s), 0)], params: 0 };
    default:
      // Shape-preserving layers (Activation, ReLU, Dropout, Add, …). A type that creates weights we cannot
      // bound is refused below by its config's size fields.
      if (['units', 'filters', 'input_dim', 'output_dim'].some((k) => k in c)) {
        return { shape: input, params: NaN };
      }
      return { shape: input, params: 0 };
  }
}

/**
 * Parameters the topology of a layers model.json creates (Sequential or functional, the layer types tempered's
 * builders use and their usual companions). NaN when it cannot tell (an unknown weight-creating layer, an
 * unknown input shape).
 */
export function topologyParams(modelTopology: unknown): number {
  const top = modelTopology as { class_name?: string; config?: { layers?: LayerJson[] } | LayerJson[] };
  const cfg = top?.config;
  const layers: LayerJson[] = Array.isArray(cfg) ? cfg : (cfg?.layers ?? []);
  const sequential = top?.class_name === 'Sequential' || Array.isArray(cfg);
  const shapes = new Map<string, Shape>();
  let previous: Shape | undefined;
  let total = 0;
  for (const l of layers) {
    let inputs: Shape[];
    if (sequential) {
      const declared = (l.config?.batch_input_shape ?? l.config?.batchInputShape) as Shape | undefined;
      inputs = [previous ?? declared ?? []];
    } else {
      const names = JSON.stringify(l.inbound_nodes ?? [])
        .match(/\[\s*"([^"]+)"\s*,\s*\d+\s*,\s*\d+/g)
        ?.map((m) => /"([^"]+)"/.exec(m)![1]);
      inputs = (names ?? []).map((n) => shapes.get(n) ?? []);
      if (inputs.length === 0) inputs = [[]];
    }
    const { shape, params } = layer(l, inputs);
    total += params;
    if (l.name !== undefined) shapes.set(l.name, shape);
    previous = shape;
  }
  return total;
}
