export { System, waitFor, ADMIN_PASSWORD } from './harness';
export { PaUser, PA_BIN, type PaProcess } from './cli';
export { localListener } from './local-listener';
export { NodeProcess, NODE_MAIN } from './node-process';
export { exchange, roundTrip, startEchoServer } from './echo';
