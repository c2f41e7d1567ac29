export { attack, checkBatch, fgsm, pgdL2, pgdLinf } from './pgd';
export { resolveAttack } from './options';
export type { AttackMethod, AttackOptions, Norm, ResolvedAttack } from './options';
