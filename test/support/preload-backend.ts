// `node --import` preload of the tensorflow test phase (test/run.ts): starts the backend TEMPERED_BACKEND names
// before any test file runs, so tests that use tfjs's default backend run on it too.
import { initBackend } from '../../tensor/backend';

await initBackend();
