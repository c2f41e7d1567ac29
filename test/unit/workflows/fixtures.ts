/** Plain test data for the workflow tests (no Temporal imports, so pure tests stay fast). */
import type { Metrics } from '../../../schemas/payloads';

/** Metrics with one attack (pgd20 at ε = 0.1). */
export const metrics = (clean: number, robust: number, overrides: Partial<Metrics> = {}): Metrics => ({
  clean,
  robust: [{ attack: 'pgd20', eps: 0.1, accuracy: robust }],
  epsCurve: [],
  perClass: [],
  confusion: [],
  examples: [],
  images: 1000,
  seconds: 1,
  backend: 'wasm',
  ...overrides,
});
