// `tempered serve`: the production model (or a folder / fixed S3 model) over HTTP until SIGINT/SIGTERM.
import { resolveConnections } from '../infra/config';
import type { ModelSource } from '../serve/model-source';
import { UsageError, defineCommand } from './command';
import { log, positiveInt } from './common';

const HELP = [
  '                      [--port <n>] [--host <ip>] [--poll <seconds>] [--labels a,b,…]',
  '',
  'Serves a classifier over HTTP. By default the production version of model --name (classifier): the pointer',
  's3://tempered/models/<name>/production.json that promotion moves. The pointer is checked every --poll seconds;',
  'when it moves, the new version is loaded and swapped in without dropping requests.',
  '',
  '  POST /predict   Content-Type image/png or image/jpeg: one image of exactly the model input size;',
  '                  application/json: { "instances": [ [[[px,…],…],…], … ] } pixels in [0, 1].',
  '                  → { predictions: [{ probabilities, class, label? }], model: { version, uri } }',
  '  GET /healthz    the model being served;  GET /metrics   Prometheus metrics',
  '',
  '  --name <model>    model name under s3://tempered/models/ (default classifier)',
  '  --pointer <uri>   the production pointer (default s3://tempered/models/<name>/production.json)',
  '  --model <where>   serve a fixed model instead: a folder (model.json + weights) or s3://bucket/prefix/',
  '  --port <n>        default 8080;  --host <ip>  default 127.0.0.1',
  '  --poll <s>        seconds between pointer checks (default 30; 0 = never)',
  "  --labels <list>   class names, comma-separated (default: the pointer's or the model's, if any)",
  '  --max-body <MiB>  largest request body (default 5)',
];

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve the production model over HTTP (POST /predict, /healthz, /metrics)',
  usage: 'tempered serve [--name <model>] [--pointer s3://…/production.json] [--model s3://bucket/prefix/ | DIR]',
  help: HELP,
  options: {
    name: { type: 'string', default: 'classifier' },
    pointer: { type: 'string' },
    model: { type: 'string' },
    port: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    poll: { type: 'string' },
    labels: { type: 'string' },
    'max-body': { type: 'string' },
  },
  async run({ values }) {
    if (values.model && values.pointer) throw new UsageError('--model and --pointer: give one, not both');
    if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(values.name)) {
      throw new UsageError(`--name: expected lowercase letters, digits and -, got ${JSON.stringify(values.name)}`);
    }
    const port = values.port === '0' ? 0 : (positiveInt(values.port, '--port') ?? 8080);
    const poll = values.poll === undefined ? 30 : Number(values.poll);
    if (!Number.isFinite(poll) || poll < 0) throw new UsageError(`--poll: expected seconds >= 0, got ${values.poll}`);
    const maxBody = values['max-body'] === undefined ? 5 : Number(values['max-body']);
    if (!(maxBody > 0))
      throw new UsageError(`--max-body: expected a positive number of MiB, got ${values['max-body']}`);
    const labels = values.labels?.split(',').map((l) => l.trim());

    const { createObjectStore } = await import('../storage/object-store');
    const { initBackend } = await import('../tensor/backend/index');
    const { defaultPointerUri, folderSource, pointerSource, s3FolderSource } = await import('../serve/model-source');
    const { startModelServer } = await import('../serve/server');
    let source: ModelSource;
    if (values.model && !values.model.startsWith('s3://')) {
      source = folderSource(values.model);
    } else {
      const store = createObjectStore(resolveConnections().s3);
      source = values.model
        ? s3FolderSource(store, values.model)
        : pointerSource(store, values.pointer ?? defaultPointerUri(values.name));
    }
    await initBackend('auto', { log });
    const server = await startModelServer({
      source,
      port,
      host: values.host,
      pollSeconds: values.model ? 0 : poll,
      maxBodyBytes: Math.round(maxBody * 1024 * 1024),
      labels,
      log,
    });
    log(`listening on ${server.url} (POST /predict, GET /healthz, GET /metrics); Ctrl-C stops`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        log(`${signal}: finishing in-flight requests`);
        process.off('SIGINT', stop).off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    });
    await server.close();
    return 0;
  },
});
