// The worker's allow-list and caps come from the environment in one place; a malformed value is an error at
// start that names the variable, not a NaN that every activity trips over later.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_DATASET_ROOT, workerLimits } from '../../../infra/config';

describe('workerLimits', () => {
  it('defaults: the Fashion-MNIST folder, no bucket, any public host, 30 s, 2048 MiB', () => {
    assert.deepEqual(workerLimits({}), {
      roots: [DEFAULT_DATASET_ROOT],
      buckets: [],
      hosts: ['*'],
      httpTimeoutS: 30,
      maxDatasetMiB: 2048,
    });
  });

  it('reads the lists', () => {
    const l = workerLimits({
      TEMPERED_DATASET_ROOTS: '/data/a:/data/b',
      TEMPERED_DATASET_BUCKETS: 'datasets, shared',
      TEMPERED_DATASET_HOSTS: 'data.example,127.0.0.1:8080',
      TEMPERED_HTTP_TIMEOUT_S: '5',
      TEMPERED_MAX_DATASET_MIB: '64',
    });
    assert.deepEqual(l, {
      roots: ['/data/a', '/data/b'],
      buckets: ['datasets', 'shared'],
      hosts: ['data.example', '127.0.0.1:8080'],
      httpTimeoutS: 5,
      maxDatasetMiB: 64,
    });
  });

  for (const [name, value] of [
    ['TEMPERED_MAX_DATASET_MIB', 'lots'],
    ['TEMPERED_MAX_DATASET_MIB', '-1'],
    ['TEMPERED_MAX_DATASET_MIB', '0'],
    ['TEMPERED_HTTP_TIMEOUT_S', 'NaN'],
  ] as const) {
    it(`refuses ${name}=${value}, naming it`, () => {
      assert.throws(
        () => workerLimits({ [name]: value }),
        new RegExp(`${name}="${value}": expected a positive number`),
      );
    });
  }

  it('refuses a relative root', () => {
    assert.throws(
      () => workerLimits({ TEMPERED_DATASET_ROOTS: 'data' }),
      /TEMPERED_DATASET_ROOTS: "data" is not an absolute path/,
    );
  });
});
