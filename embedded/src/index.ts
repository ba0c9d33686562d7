export { startEmbedded, type Embedded, type EmbeddedOptions } from './embedded';
export { startDemoBackends, type DemoBackends } from './demo-backends';
