// The artifact layout's owner: a production pointer is trusted only when it names a version under its own
// versions/ folder, and a model's file names obey one path-safety rule.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_ARTIFACTS,
  PointerError,
  artifactPaths,
  checkPointer,
  pointerUri,
  readPointer,
} from '../../../artifacts/store';
import { ObjectNotFoundError } from '../../../storage/object-store';
import type { ObjectStore } from '../../../storage/object-store';
import { ModelFileError, modelFileName } from '../../../tensor/models/io';

const POINTER = 's3://tempered/models/clf/production.json';

/** A store holding one object at the pointer's key. */
function storeWith(body: string | undefined): ObjectStore {
  return {
    async getBytes(bucket: string, key: string) {
      if (body === undefined || `s3://${bucket}/${key}` !== POINTER) throw new ObjectNotFoundError(bucket, key);
      return Buffer.from(body);
    },
  } as unknown as ObjectStore;
}

describe('the production pointer', () => {
  it('places every key under <prefix>/<modelName>/ with the spec defaults', () => {
    const p = artifactPaths(DEFAULT_ARTIFACTS);
    assert.equal(pointerUri({ modelName: DEFAULT_ARTIFACTS.modelName }), `s3://tempered/${p.pointer}`);
    assert.equal(p.version('v2'), `models/${DEFAULT_ARTIFACTS.modelName}/versions/v2/`);
  });

  it('accepts a pointer at its own version', async () => {
    const ok = { version: 'v3', uri: 's3://tempered/models/clf/versions/v3/', runId: 'r' };
    assert.equal(checkPointer(POINTER, ok).version, 'v3');
    assert.deepEqual(await readPointer(storeWith(JSON.stringify(ok)), POINTER), ok);
    assert.equal(await readPointer(storeWith(undefined), POINTER), undefined);
  });

  for (const [why, uri, version] of [
    ['another bucket', 's3://evil/models/clf/versions/v3/', 'v3'],
    ['another prefix', 's3://tempered/planted/clf/versions/v3/', 'v3'],
    ['another model', 's3://tempered/models/other/versions/v3/', 'v3'],
    ['a path that climbs out', 's3://tempered/models/clf/versions/../../x/', 'v3'],
    ['a version that is not the named one', 's3://tempered/models/clf/versions/v4/', 'v3'],
    ['a work prefix', 's3://tempered/runs/harden-clf/r1/hardened/', 'v3'],
  ] as const) {
    it(`refuses a pointer whose uri names ${why}`, async () => {
      assert.throws(() => checkPointer(POINTER, { version, uri }), PointerError);
      await assert.rejects(
        readPointer(storeWith(JSON.stringify({ version, uri })), POINTER),
        (err: Error) =>
          err instanceof PointerError && err.message.includes(POINTER) && /outside|expected/.test(err.message),
      );
    });
  }

  it('refuses unparsable and malformed pointers, naming them', async () => {
    await assert.rejects(readPointer(storeWith('{ nope'), POINTER), /production\.json: expected JSON/);
    await assert.rejects(
      readPointer(storeWith('{"version":"../x","uri":"s3://tempered/models/clf/versions/x/"}'), POINTER),
      /version/,
    );
  });
});

describe('model file names', () => {
  it('keeps plain names and drops a leading ./', () => {
    assert.equal(modelFileName('weights.bin', 'm'), 'weights.bin');
    assert.equal(modelFileName('./group1-shard1of2.bin', 'm'), 'group1-shard1of2.bin');
    assert.equal(modelFileName('sub/w.bin', 'm'), 'sub/w.bin');
  });
  for (const bad of [
    '',
    '/etc/passwd',
    '../w.bin',
    'a/../../w.bin',
    'a//b',
    'a\\..\\b',
    'w.bin\n',
    'a/./b',
    '%2e%2e/x',
  ]) {
    it(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(() => modelFileName(bad, 'x/model.json'), ModelFileError);
    });
  }
});
