export { loadConfig, configSchema, type Config, type ConfigInput } from './config';
export { startControlPlane, type RunningControlPlane } from './server';
export { createApp } from './app';
export { buildControlPlane, type ControlPlane } from './services';
export { migrate, migrationsFingerprint } from './db/migrate';
