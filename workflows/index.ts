/** The workflows the worker registers (`workflowsPath` points here). Messages live in `./messages`. */
export { hardeningRun } from './hardening-run';
export { evaluation } from './evaluation';
