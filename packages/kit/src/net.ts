/**
 * The host a local client dials to reach a listener bound to `host`: a
 * wildcard bind (`0.0.0.0`, `::`) is reached on loopback; any other host as is.
 * Used to print and advertise the URLs of the services' own listeners.
 */
export const dialableHost = (host: string): string => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
