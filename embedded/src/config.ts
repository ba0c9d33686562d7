import { envBool, type Env } from '@pa/kit';

/** Settings of the embedded runner itself (each service reads its own config too). */
export interface EmbeddedSettings {
  /** Seed the demo backends, connections, role and policies (PA_DEMO, default true). */
  demo: boolean;
}

export const loadEmbeddedSettings = (env: Env = process.env): EmbeddedSettings => ({
  demo: env.PA_DEMO === undefined || env.PA_DEMO === '' ? true : envBool.parse(env.PA_DEMO),
});

/** The process environment, for the services' own loaders (read here only). */
export const processEnv = (): Env => process.env;
