export { attack, checkBatch, fgsm, pgdL2, pgdLinf } from './pgd';
export { resolveAttack } from './options';
export type { AttackMethod, AttackOptions, Norm, ResolvedAttack } from './options';
export { attackLogits } from './pgd';
export { apgd, apgdCheckpoints, apgdTargeted } from './apgd';
export type { ApgdOptions, ApgdTargetedOptions } from './apgd';
export { attackLoss, dlrLoss, dlrTargetedLoss, lossFunction } from './losses';
export type { AttackLoss } from './losses';
export type { SuiteAttackContext, SuiteAttackFn } from './contract';
