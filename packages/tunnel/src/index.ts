export { GRANT_STATUS_PATH, TUNNEL_PATH, TUNNEL_PROTOCOL, TUNNEL_ID_HEADER, CLIENT_LABEL_HEADER, MAX_GRANT_BYTES } from './protocol';
export { parseTunnelRequest, bearerGrant, acceptTunnel, rejectTunnel, tunnelProblem, type TunnelRequest } from './server';
export { checkGrant, openTunnel, TunnelRefusedError, type CheckGrantOptions, type OpenTunnel, type OpenTunnelOptions } from './client';
export { relaySockets, canAdopt, SHARED_READ_BYTES, PRIVATE_READ_BYTES, type SocketRelay, type SocketRelayHooks, type BufferKind } from './socket-relay';
