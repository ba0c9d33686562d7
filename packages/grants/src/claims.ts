import { ID_PATTERN } from '@pa/kit';
import { PROTOCOLS } from '@pa/policy';
import { z } from 'zod';

/** `aud` of every grant: the data plane. */
export const GRANT_AUDIENCE = 'pa-data-plane';

/** `typ` header of a grant JWS, so no other token signed by the same keys passes as a grant. */
export const GRANT_TOKEN_TYPE = 'pa-grant+jwt';

/** TLS modes for the upstream connection (the same set as the control plane's connections). */
export const TLS_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
/** How the data plane secures its connection to the backend. */
export type TlsMode = (typeof TLS_MODES)[number];

/** Longest lifetime of one grant token; long sessions renew. */
export const MAX_GRANT_TTL_SECONDS = 3600;

// Objects are not strict: a node ignores claims it does not know, so the control
// plane can be upgraded before the data plane. Everything is signed, so an
// unknown member cannot come from anyone but the control plane.
const idString = z.string().min(1).max(64);
const epochSeconds = z.number().int().nonnegative();

/** Who the grant is for. */
export const grantUserSchema = z.object({
  id: idString,
  name: z.string().min(1).max(200),
  roles: z.array(z.string().min(1).max(63)).max(200),
});

/** The connection the grant reaches, with everything the data plane needs to dial it. */
export const grantConnectionSchema = z.object({
  id: idString,
  name: z.string().min(1).max(63),
  protocol: z.enum(PROTOCOLS),
  host: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535),
  tlsMode: z.enum(TLS_MODES),
  /** Database name (PostgreSQL), or null. */
  database: z.string().min(1).max(63).nullable(),
});

/**
 * The compiled policy for this user and connection. Validated loosely here
 * (version and hash only) so the grant format and the policy engine can evolve
 * apart; the engine validates the rest when it loads it.
 */
export const grantPolicySchema = z.looseObject({
  version: z.number().int().nonnegative(),
  hash: z.string().min(1).max(200),
});

/** Limits of the session the grant belongs to. */
export const sessionLimitsSchema = z.object({
  /** Most tunnels open at once under this session. */
  maxConnections: z.number().int().min(1).max(10_000),
  /** Absolute end of the session (epoch seconds); no renewal goes past it. */
  sessionEndsAt: epochSeconds,
  /** A tunnel idle this long is closed. */
  idleTimeoutSeconds: z.number().int().min(1).max(86_400),
});

/** What the control plane puts in a grant (everything but the registered JWT claims). */
export const grantContentSchema = z.object({
  /** Session id (`ses_…`), shared by a grant and its renewals; revocation can target it. */
  sessionId: idString,
  user: grantUserSchema,
  connection: grantConnectionSchema,
  policy: grantPolicySchema,
  limits: sessionLimitsSchema,
  /** Backend credentials as a compact JWE to the data plane's node key; null when there are none. */
  credentials: z.string().regex(/^[\w-]+\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWE').max(16_384).nullable(),
});

/** The full, verified payload of a grant. */
export const grantClaimsSchema = grantContentSchema
  .extend({
    iss: z.string().min(1),
    aud: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    /** The user id. */
    sub: idString,
    /** The grant id (`grt_…`). */
    jti: z.string().regex(ID_PATTERN).startsWith('grt_'),
    iat: epochSeconds,
    nbf: epochSeconds,
    exp: epochSeconds,
  })
  .refine((c) => c.sub === c.user.id, { message: 'sub must equal user.id', path: ['sub'] })
  .refine((c) => c.nbf < c.exp, { message: 'nbf must precede exp', path: ['exp'] });

/** What a grant carries besides the registered JWT claims, as verified. */
export type GrantContent = z.infer<typeof grantContentSchema>;

/**
 * The compiled policy as `signGrant` takes it: any JSON-serialisable object with
 * a version and a hash (an interface such as @pa/policy's `CompiledPolicy` fits;
 * it needs no index signature).
 */
export interface GrantPolicyInput {
  readonly version: number;
  readonly hash: string;
}

/** Input to `signGrant`. */
export type GrantContentInput = Omit<GrantContent, 'policy'> & { policy: GrantPolicyInput };
/** A verified grant's claims. */
export type GrantClaims = z.infer<typeof grantClaimsSchema>;
/** The user part of a grant. */
export type GrantUser = z.infer<typeof grantUserSchema>;
/** The connection part of a grant. */
export type GrantConnection = z.infer<typeof grantConnectionSchema>;
/** The compiled policy carried by a grant (opaque beyond version and hash). */
export type GrantPolicy = z.infer<typeof grantPolicySchema>;
/** The session limits carried by a grant. */
export type SessionLimits = z.infer<typeof sessionLimitsSchema>;
