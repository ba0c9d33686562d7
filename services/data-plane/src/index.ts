export { loadConfig, configSchema, type Config, type ConfigInput } from './config';
export { startNode, NODE_VERSION, type RunningNode, type StartNodeOptions } from './node';
export { PROTOCOL_HANDLERS } from './protocols/registry';
