/**
 * The tunnel handshake: an HTTP/1.1 Upgrade that carries a grant.
 *
 *   client                                   data-plane node
 *     │ GET /v1/tunnel HTTP/1.1                   │
 *     │ Host: node:7000                           │
 *     │ Connection: Upgrade                       │
 *     │ Upgrade: pa-tunnel/1                      │
 *     │ Authorization: Bearer <grant JWS>         │
 *     │──────────────────────────────────────────▶│ verify grant, Redis checks
 *     │ HTTP/1.1 101 Switching Protocols          │
 *     │ Upgrade: pa-tunnel/1                      │
 *     │ PA-Tunnel-Id: tun_…                       │
 *     │◀──────────────────────────────────────────│
 *     │ ═══ raw bytes of the grant's protocol ═══ │ (postgres wire, HTTP/1.1, TCP)
 *
 * On refusal the node answers with a normal HTTP status and an RFC 9457
 * problem document (code, detail) and closes the connection.
 *
 * `GET /v1/grant-status` with the same `Authorization` asks, without opening
 * anything, whether the node would still take the grant: `200` with
 * `{"status":"active",…}`, or the refusal a tunnel would get (same status and
 * problem document: GRANT_REVOKED, GRANT_EXPIRED…). `pa connect` asks when a
 * node closes one of its tunnels, so a revocation ends it at once.
 */
export const TUNNEL_PATH = '/v1/tunnel';
export const GRANT_STATUS_PATH = '/v1/grant-status';
export const TUNNEL_PROTOCOL = 'pa-tunnel/1';
export const TUNNEL_ID_HEADER = 'pa-tunnel-id';
/** Optional client-chosen label (e.g. the CLI's local connection number), for logs only. */
export const CLIENT_LABEL_HEADER = 'pa-client-label';
/** Largest grant the server reads (a grant with a compiled policy inside can be a few KiB). */
export const MAX_GRANT_BYTES = 32 * 1024;
