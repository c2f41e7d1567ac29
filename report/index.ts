/** The run report: `buildReport` (pixels in) and `renderReport` (PNG in), both returning self-contained HTML. */
export { buildReport, encodeExample } from './build';
export type { BuildInput, ExamplePixels } from './build';
export { encodePng, perturbationPixels } from './images';
export type { Pixels } from './images';
export { renderReport } from './render';
export type { EncodedExample, RenderInput, ReportData } from './render';
