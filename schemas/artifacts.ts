import { z } from 'zod';

/** A version name as promotion makes them: `v1`, `v2`, … */
export const VersionName = z.string().regex(/^v[1-9][0-9]{0,8}$/, 'expected a version name like v3');

/**
 * The production pointer (`<prefix>/<modelName>/` + the pointer file): which version serves, since when, from which
 * run. Extra fields are kept (and ignored). Readers also check that `uri` lies under the pointer's own
 * `versions/` folder (artifacts/store.ts): a pointer cannot send `serve` to a model stored anywhere else.
 */
export const ProductionPointer = z.looseObject({
  version: VersionName,
  uri: z.string().regex(/^s3:\/\/[^/]+\/.+\/$/, 'expected s3://bucket/<prefix>/<model>/versions/<version>/'),
  /** Temporal's run id of the promoting run (stored pointers keep this field name). */
  runId: z.string().optional(),
  /** The promoting run's workflow id. */
  workflowId: z.string().optional(),
  promotedAt: z.string().optional(),
  labels: z.array(z.string()).optional(),
  classNames: z.array(z.string()).optional(),
});
export type ProductionPointer = z.infer<typeof ProductionPointer>;
