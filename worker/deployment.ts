/**
 * Pinned worker builds (Temporal Worker Versioning). Every worker declares a deployment name and a build ID; with
 * `defaultVersioningBehavior: 'PINNED'` a run stays on the build it started on, so deploying new worker code
 * while a 12-hour run is in flight does not replay that run's history on the new code. New runs go to the
 * deployment's *current* build. Rolling out and retiring builds: README, "Deploying a new worker build".
 *
 * Settings (environment):
 * - `TEMPERED_DEPLOYMENT`: the deployment name (default `tempered`); `none` runs the worker unversioned.
 * - `TEMPERED_BUILD_ID`: this build (default `tempered-<package version>`); set it to the commit you deploy.
 * - `TEMPERED_PROMOTE_BUILD`: `if-none` (default) makes this build current only when the deployment has no current
 *   build yet (a fresh server, `tempered up`, tests); `always` makes it current at start; `never` leaves it to an
 *   operator (`temporal worker deployment set-current-version`).
 */
import type { Client } from '@temporalio/client';
import type { WorkerDeploymentOptions } from '@temporalio/worker';

export interface DeploymentSettings {
  deploymentName: string;
  buildId: string;
  promote: 'if-none' | 'always' | 'never';
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const BUILD = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/;

/** The worker's deployment from the environment, or undefined for an unversioned worker. */
export function deploymentFromEnv(env: NodeJS.ProcessEnv, packageVersion: string): DeploymentSettings | undefined {
  const deploymentName = env.TEMPERED_DEPLOYMENT?.trim() || 'tempered';
  if (deploymentName === 'none') return undefined;
  const buildId = env.TEMPERED_BUILD_ID?.trim() || `tempered-${packageVersion}`;
  const promote = (env.TEMPERED_PROMOTE_BUILD?.trim() || 'if-none') as DeploymentSettings['promote'];
  if (!NAME.test(deploymentName))
    throw new Error(
      `TEMPERED_DEPLOYMENT: expected letters, digits, '.', '_' or '-', got ${JSON.stringify(deploymentName)}`,
    );
  if (!BUILD.test(buildId))
    throw new Error(
      `TEMPERED_BUILD_ID: expected letters, digits, '.', '_', '+' or '-', got ${JSON.stringify(buildId)}`,
    );
  if (!['if-none', 'always', 'never'].includes(promote))
    throw new Error(`TEMPERED_PROMOTE_BUILD: expected if-none, always or never, got ${JSON.stringify(promote)}`);
  return { deploymentName, buildId, promote };
}

/** The `workerDeploymentOptions` of every worker of this build: pinned runs. */
export function workerDeploymentOptions(d: DeploymentSettings): WorkerDeploymentOptions {
  return {
    version: { deploymentName: d.deploymentName, buildId: d.buildId },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'PINNED',
  };
}

/**
 * Makes this build the deployment's current one when `promote` says so. Returns what it did, for the log.
 * `if-none` reads the deployment first; a deployment that does not exist yet has no current build.
 */
export async function promoteBuild(client: Client, namespace: string, d: DeploymentSettings): Promise<string> {
  if (d.promote === 'never') return `build ${d.buildId} not promoted (TEMPERED_PROMOTE_BUILD=never)`;
  const service = client.workflowService;
  if (d.promote === 'if-none') {
    const current = await service
      .describeWorkerDeployment({ namespace, deploymentName: d.deploymentName })
      .then((r) => r.workerDeploymentInfo?.routingConfig?.currentDeploymentVersion?.buildId ?? undefined)
      .catch(() => undefined);
    if (current) return `build ${current} is current in deployment ${d.deploymentName}`;
  }
  await service.setWorkerDeploymentCurrentVersion({
    namespace,
    deploymentName: d.deploymentName,
    buildId: d.buildId,
    allowNoPollers: true,
    identity: `tempered-worker@${d.buildId}`,
  });
  return `build ${d.buildId} is now current in deployment ${d.deploymentName}`;
}
