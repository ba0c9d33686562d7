import { globToRegExp } from '../names';

/**
 * Built-in functions denied by default, whatever schema they are called in:
 * they read or write server files, run SQL given as text (out of the engine's
 * sight), reach other servers, control server processes, change settings
 * behind the policy's back, or stall the session. An allow rule lifts this for
 * one function only by naming it explicitly in `functions` (a pattern without
 * a wildcard in its name part, e.g. `pg_sleep` or `pg_catalog.pg_sleep`).
 *
 * `current_setting` and `pg_notify` are not listed: the engine judges them as
 * what they do (kind `show` / `notify`), like SHOW and NOTIFY.
 */
export const DEFAULT_DENIED_FUNCTIONS: readonly string[] = Object.freeze([
  // Server files
  'pg_read_file', 'pg_read_binary_file', 'pg_ls_*', 'pg_stat_file', 'pg_file_*', 'pg_logdir_ls', 'pg_current_logfile',
  'lo_import', 'lo_export',
  // SQL run from text
  'query_to_xml', 'query_to_xmlschema', 'query_to_xml_and_xmlschema', 'cursor_to_xml', 'cursor_to_xmlschema',
  'table_to_xml', 'table_to_xmlschema', 'table_to_xml_and_xmlschema', 'schema_to_xml', 'schema_to_xmlschema',
  'schema_to_xml_and_xmlschema', 'database_to_xml', 'database_to_xmlschema', 'database_to_xml_and_xmlschema', 'ts_stat',
  // Other servers
  'dblink*',
  // Server and session control
  'pg_terminate_backend', 'pg_cancel_backend', 'pg_reload_conf', 'pg_rotate_logfile', 'pg_promote', 'pg_switch_wal',
  'pg_create_restore_point', 'pg_backup_start', 'pg_backup_stop', 'pg_wal_replay_pause', 'pg_wal_replay_resume',
  'pg_log_backend_memory_contexts', 'pg_create_physical_replication_slot', 'pg_create_logical_replication_slot',
  'pg_drop_replication_slot', 'pg_copy_physical_replication_slot', 'pg_copy_logical_replication_slot',
  'pg_replication_slot_advance', 'pg_logical_slot_*', 'pg_logical_emit_message', 'pg_replication_origin_*',
  'pg_stat_reset*', 'pg_import_system_collations', 'binary_upgrade_*',
  // Settings behind the policy's back
  'set_config',
  // Stalling the session
  'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
]);

const DENIED = DEFAULT_DENIED_FUNCTIONS.map(globToRegExp);

/** Whether `name` (a function's name part, any schema) is on the default deny list. */
export const isDefaultDeniedFunction = (name: string): boolean => DENIED.some((re) => re.test(name));
