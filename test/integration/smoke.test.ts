// The whole chain on the real stack: a Temporal workflow whose activity writes an object to S3 through
// storage/ and reads it back, run by a real Worker (workflow bundle built from TypeScript by the SDK).
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { ObjectNotFoundError } from '../../storage/object-store';
import type { SmokeActivities } from './fixtures/smoke-workflows';
import { stackFromEnv, storeFromEnv, uniqueName } from '../support/stack';

Runtime.install({ logger: new DefaultLogger('WARN') });

const workflowsPath = fileURLToPath(new URL('./fixtures/smoke-workflows.ts', import.meta.url));

describe('smoke: workflow → activity → S3 → back', () => {
  const conn = stackFromEnv();
  const store = storeFromEnv();
  const bucket = uniqueName('smoke').toLowerCase();
  let connection: Connection;
  let nativeConnection: NativeConnection;

  before(async () => {
    connection = await Connection.connect({ address: conn.temporal.address });
    nativeConnection = await NativeConnection.connect({ address: conn.temporal.address });
    await store.ensureBucket(bucket);
  });

  after(async () => {
    await nativeConnection?.close();
    await connection?.close();
  });

  it('runs a workflow whose activity round-trips an object through the object store', async () => {
    const activities: SmokeActivities = {
      async roundTrip(b, key, text) {
        await store.putJson(b, key, { text });
        const back = await store.getJson<{ text: string }>(b, key);
        const { size } = await store.stat(b, key);
        return { readBack: back.text, size };
      },
    };
    const taskQueue = uniqueName('smoke');
    const worker = await Worker.create({
      connection: nativeConnection,
      namespace: conn.temporal.namespace,
      taskQueue,
      workflowsPath,
      activities,
    });
    const client = new Client({ connection, namespace: conn.temporal.namespace });
    const text = `hello from ${taskQueue}`;
    const result = await worker.runUntil(
      client.workflow.execute('smokeWorkflow', {
        taskQueue,
        workflowId: uniqueName('smoke-wf'),
        args: [bucket, 'smoke/object.json', text],
        workflowExecutionTimeout: '60 seconds',
      }),
    );
    const expectedSize = Buffer.byteLength(JSON.stringify({ text }));
    assert.equal(result, `${text} (${expectedSize} bytes, via-bundle)`);
    // The object really is in the store, written through storage/.
    assert.deepEqual(await store.getJson(bucket, 'smoke/object.json'), { text });
  });

  it('stores bytes, lists by prefix, streams files and reports a missing key as NotFound', async () => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
    await store.putBytes(bucket, 'data/a.bin', bytes, { purpose: 'test' });
    await store.putBytes(bucket, 'data/b.bin', Buffer.from('b'));
    await store.putBytes(bucket, 'other/c.bin', Buffer.from('c'));
    assert.deepEqual(await store.getBytes(bucket, 'data/a.bin'), bytes);
    assert.equal((await store.stat(bucket, 'data/a.bin')).meta.purpose, 'test');
    assert.deepEqual(
      (await store.list(bucket, 'data/')).map((e) => [e.key, e.size]),
      [
        ['data/a.bin', 1000],
        ['data/b.bin', 1],
      ],
    );
    assert.equal(await store.exists(bucket, 'data/b.bin'), true);
    await store.remove(bucket, 'data/b.bin');
    assert.equal(await store.exists(bucket, 'data/b.bin'), false);
    await assert.rejects(store.getBytes(bucket, 'data/b.bin'), ObjectNotFoundError);
    await assert.rejects(store.getBytes(uniqueName('nobucket').toLowerCase(), 'k'), ObjectNotFoundError);

    const { mkdtemp, readFile, writeFile, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'tempered-smoke-'));
    try {
      await writeFile(join(dir, 'up.bin'), bytes);
      await store.putFile(bucket, 'files/up.bin', join(dir, 'up.bin'));
      await store.getFile(bucket, 'files/up.bin', join(dir, 'nested', 'down.bin'));
      assert.deepEqual(await readFile(join(dir, 'nested', 'down.bin')), bytes);
      await assert.rejects(store.getFile(bucket, 'files/missing.bin', join(dir, 'x.bin')), ObjectNotFoundError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
