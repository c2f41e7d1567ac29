// The worker's deployment settings from the environment (worker/deployment.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deploymentFromEnv, workerDeploymentOptions } from '../../../worker/deployment';

test('workers are versioned and pinned by default; each setting is checked and named when wrong', () => {
  const d = deploymentFromEnv({}, '0.3.0');
  assert.deepEqual(d, { deploymentName: 'tempered', buildId: 'tempered-0.3.0', promote: 'if-none' });
  assert.deepEqual(workerDeploymentOptions(d!), {
    version: { deploymentName: 'tempered', buildId: 'tempered-0.3.0' },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'PINNED',
  });
  const env = { TEMPERED_DEPLOYMENT: 'prod', TEMPERED_BUILD_ID: 'git-4f2a9c1', TEMPERED_PROMOTE_BUILD: 'never' };
  assert.deepEqual(deploymentFromEnv(env, '0.3.0'), {
    deploymentName: 'prod',
    buildId: 'git-4f2a9c1',
    promote: 'never',
  });
  assert.equal(deploymentFromEnv({ TEMPERED_DEPLOYMENT: 'none' }, '0.3.0'), undefined);
  assert.throws(() => deploymentFromEnv({ TEMPERED_BUILD_ID: 'a b' }, '1'), /TEMPERED_BUILD_ID: expected/);
  assert.throws(() => deploymentFromEnv({ TEMPERED_DEPLOYMENT: '-x' }, '1'), /TEMPERED_DEPLOYMENT: expected/);
  assert.throws(() => deploymentFromEnv({ TEMPERED_PROMOTE_BUILD: 'yes' }, '1'), /TEMPERED_PROMOTE_BUILD: expected/);
});
