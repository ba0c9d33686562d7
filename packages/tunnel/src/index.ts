export { TUNNEL_PATH, TUNNEL_PROTOCOL, TUNNEL_ID_HEADER, CLIENT_LABEL_HEADER, MAX_GRANT_BYTES } from './protocol';
export { parseTunnelRequest, acceptTunnel, rejectTunnel, type TunnelRequest } from './server';
export { openTunnel, TunnelRefusedError, type OpenTunnel, type OpenTunnelOptions } from './client';
