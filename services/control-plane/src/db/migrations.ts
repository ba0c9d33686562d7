/**
 * Versioned schema migrations, applied in order inside one transaction under
 * an advisory lock. Never edit a migration that has shipped: add a new one.
 * Each is checksummed; a changed, already-applied migration stops start-up.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
CREATE TABLE users (
  id text PRIMARY KEY,
  username text NOT NULL,
  email text,
  display_name text NOT NULL DEFAULT '',
  password_hash text NOT NULL,
  disabled boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

CREATE TABLE roles (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  permissions text[] NOT NULL DEFAULT '{}',
  built_in boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX roles_name_key ON roles (lower(name));

CREATE TABLE role_bindings (
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role_id text NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, role_id)
);
CREATE INDEX role_bindings_role_idx ON role_bindings (role_id);

CREATE TABLE connections (
  id text PRIMARY KEY,
  name text NOT NULL,
  protocol text NOT NULL CHECK (protocol IN ('postgres', 'http', 'tcp')),
  host text NOT NULL,
  port integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
  tls_mode text NOT NULL,
  database text,
  description text NOT NULL DEFAULT '',
  tags jsonb NOT NULL DEFAULT '{}',
  metadata jsonb NOT NULL DEFAULT '{}',
  max_grant_seconds integer NOT NULL CHECK (max_grant_seconds > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX connections_name_key ON connections (lower(name));

-- Backend credentials, encrypted at rest (AES-256-GCM) under the master key named by key_id.
CREATE TABLE connection_credentials (
  connection_id text PRIMARY KEY REFERENCES connections (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('password', 'header')),
  username text,
  header_name text,
  secret_ciphertext bytea NOT NULL,
  key_id text NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policies (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  enabled boolean NOT NULL DEFAULT true,
  roles text[] NOT NULL,
  selector jsonb NOT NULL,
  rules jsonb NOT NULL,
  version integer NOT NULL DEFAULT 1,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX policies_name_key ON policies (lower(name));

CREATE TABLE grants (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  connection_id text NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
  policy_hash text NOT NULL,
  policy_version integer NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  session_ends_at timestamptz NOT NULL,
  renewed_from text,
  revoked_at timestamptz,
  revoked_by text,
  revoke_reason text
);
CREATE INDEX grants_user_idx ON grants (user_id, issued_at DESC);
CREATE INDEX grants_connection_idx ON grants (connection_id, issued_at DESC);

-- Opaque refresh tokens, stored as SHA-256 hashes; a family is one login session.
CREATE TABLE refresh_tokens (
  id text PRIMARY KEY,
  family_id text NOT NULL,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE,
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  revoked_at timestamptz,
  revoke_reason text
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);

-- Token signing keys (Ed25519); private halves encrypted under the master key.
CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  use text NOT NULL CHECK (use IN ('access', 'grant', 'node-encryption')),
  alg text NOT NULL,
  public_jwk jsonb NOT NULL,
  private_ciphertext bytea NOT NULL,
  key_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  activated_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz
);

CREATE TABLE settings (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_events (
  id text PRIMARY KEY,
  time timestamptz NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  actor_id text,
  actor_name text,
  action text NOT NULL,
  outcome text NOT NULL CHECK (outcome IN ('success', 'failure', 'denied', 'allowed', 'error')),
  target_type text,
  target_id text,
  connection_id text,
  grant_id text,
  session_id text,
  node_id text,
  request_id text,
  source_ip text,
  user_agent text,
  details jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_time_idx ON audit_events (time DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, time DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, time DESC);
CREATE INDEX audit_events_connection_idx ON audit_events (connection_id, time DESC);

-- Audit events are append-only: no update, delete or truncate, whoever asks.
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = '42501';
END;
$$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE OR DELETE ON audit_events
  FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
`,
  },
  {
    version: 2,
    name: 'grant sessions and data-plane nodes',
    sql: `
ALTER TABLE grants ADD COLUMN session_id text NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN login_session_id text;
ALTER TABLE grants ADD COLUMN connection_name text NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN username text NOT NULL DEFAULT '';
CREATE INDEX grants_session_idx ON grants (session_id);
CREATE INDEX grants_login_session_idx ON grants (login_session_id);

CREATE TABLE nodes (
  id text PRIMARY KEY,
  version text NOT NULL DEFAULT '',
  tunnel_url text NOT NULL,
  protocols text[] NOT NULL DEFAULT '{}',
  load jsonb NOT NULL DEFAULT '{}',
  registered_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now(),
  draining boolean NOT NULL DEFAULT false
);
`,
  },
];
