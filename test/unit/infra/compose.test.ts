// The compose stack cannot be started here (no Docker engine), so check what a typo would break.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../../../infra/config';

const infra = join(REPO_ROOT, 'infra');
const compose = parse(readFileSync(join(infra, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, { image: string; ports?: string[]; volumes?: string[] }>;
};

describe('infra/docker-compose.yml', () => {
  it('has the services tempered expects', () => {
    for (const name of ['postgresql', 'temporal-schema', 'temporal', 'temporal-ui', 'minio', 'prometheus', 'grafana']) {
      assert.ok(compose.services[name], `service ${name} is missing`);
    }
    assert.match(compose.services.temporal.image, /^temporalio\/server:/);
  });

  it('publishes every port on loopback only', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const port of service.ports ?? []) assert.match(port, /^127\.0\.0\.1:/, `${name} publishes ${port}`);
    }
  });

  it('mounts only files and folders that exist in the repo', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = volume.split(':')[0];
        if (!source.startsWith('./')) continue; // a named volume
        assert.ok(existsSync(join(infra, source)), `${name} mounts ${source}, which does not exist under infra/`);
      }
    }
  });
});

describe('infra/prometheus.yml', () => {
  it('scrapes the worker SDK (9464) and app (9465) metrics', () => {
    const prom = parse(readFileSync(join(infra, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((s) => s.targets));
    assert.ok(targets.includes('host.docker.internal:9464'));
    assert.ok(targets.includes('host.docker.internal:9465'));
  });

  it('ships dashboards Grafana can parse', () => {
    const dashboard = JSON.parse(readFileSync(join(infra, 'grafana', 'dashboards', 'tempered-stack.json'), 'utf8'));
    assert.equal(typeof dashboard.title, 'string');
    assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length > 0);
  });
});
