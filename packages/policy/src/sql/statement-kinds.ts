import type { StatementKind } from '../schema';

/**
 * Which statement kind each top-level parse-tree node is. Every PostgreSQL 18
 * statement node is listed; a node that is not listed (a newer grammar) is
 * refused rather than guessed.
 */
const DDL_NODES = [
  'CreateSchemaStmt', 'AlterTableStmt', 'ReplicaIdentityStmt', 'AlterCollationStmt', 'AlterDomainStmt',
  'CreateStmt', 'CreateTableSpaceStmt', 'DropTableSpaceStmt', 'AlterTableSpaceOptionsStmt', 'AlterTableMoveAllStmt',
  'CreateExtensionStmt', 'AlterExtensionStmt', 'AlterExtensionContentsStmt', 'CreateFdwStmt', 'AlterFdwStmt',
  'CreateForeignServerStmt', 'AlterForeignServerStmt', 'CreateForeignTableStmt', 'CreateUserMappingStmt',
  'AlterUserMappingStmt', 'DropUserMappingStmt', 'ImportForeignSchemaStmt', 'CreatePolicyStmt', 'AlterPolicyStmt',
  'CreateAmStmt', 'CreateTrigStmt', 'CreateEventTrigStmt', 'AlterEventTrigStmt', 'CreatePLangStmt', 'CreateRoleStmt',
  'AlterRoleStmt', 'AlterRoleSetStmt', 'DropRoleStmt', 'CreateSeqStmt', 'AlterSeqStmt', 'DefineStmt',
  'CreateDomainStmt', 'CreateOpClassStmt', 'CreateOpFamilyStmt', 'AlterOpFamilyStmt', 'DropStmt', 'CommentStmt',
  'SecLabelStmt', 'IndexStmt', 'CreateStatsStmt', 'AlterStatsStmt', 'CreateFunctionStmt', 'AlterFunctionStmt',
  'RenameStmt', 'AlterObjectDependsStmt', 'AlterObjectSchemaStmt', 'AlterOwnerStmt', 'AlterOperatorStmt',
  'AlterTypeStmt', 'RuleStmt', 'CompositeTypeStmt', 'CreateEnumStmt', 'CreateRangeStmt', 'AlterEnumStmt', 'ViewStmt',
  'CreatedbStmt', 'AlterDatabaseStmt', 'AlterDatabaseRefreshCollStmt', 'AlterDatabaseSetStmt', 'DropdbStmt',
  'AlterSystemStmt', 'CreateTableAsStmt', 'RefreshMatViewStmt', 'CreateConversionStmt', 'CreateCastStmt',
  'CreateTransformStmt', 'DropOwnedStmt', 'ReassignOwnedStmt', 'AlterTSDictionaryStmt', 'AlterTSConfigurationStmt',
  'CreatePublicationStmt', 'AlterPublicationStmt', 'CreateSubscriptionStmt', 'AlterSubscriptionStmt',
  'DropSubscriptionStmt',
] as const;

const FIXED: Readonly<Record<string, StatementKind>> = {
  SelectStmt: 'select',
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
  TruncateStmt: 'truncate',
  GrantStmt: 'grant',
  GrantRoleStmt: 'grant',
  AlterDefaultPrivilegesStmt: 'grant',
  TransactionStmt: 'transaction',
  ConstraintsSetStmt: 'transaction',
  VariableShowStmt: 'show',
  CallStmt: 'call',
  DoStmt: 'do',
  ExplainStmt: 'explain',
  PrepareStmt: 'prepare',
  ExecuteStmt: 'execute',
  DeallocateStmt: 'deallocate',
  ListenStmt: 'listen',
  NotifyStmt: 'notify',
  UnlistenStmt: 'unlisten',
  ClusterStmt: 'vacuum',
  ReindexStmt: 'vacuum',
  LockStmt: 'lock',
  DiscardStmt: 'discard',
  DeclareCursorStmt: 'cursor',
  ClosePortalStmt: 'cursor',
  FetchStmt: 'cursor',
  CheckPointStmt: 'utility',
  ...Object.fromEntries(DDL_NODES.map((n) => [n, 'ddl' as const])),
};

/** Statement nodes that are refused whatever the policy says, with the reason. */
export const FORBIDDEN_NODES: Readonly<Record<string, string>> = {
  LoadStmt: 'LOAD (loading a shared library into the server) is never allowed through the proxy',
};

/**
 * The kind of a top-level statement node, or undefined when the node is not a
 * statement the engine knows. `VariableSetStmt`, `CopyStmt` and `VacuumStmt`
 * depend on their fields and are resolved by the analyser.
 */
export const kindOfNode = (nodeType: string): StatementKind | undefined => FIXED[nodeType];

/** Kinds that never touch a relation (a relations condition on them can never mean anything). */
export const KINDS_WITHOUT_RELATIONS: ReadonlySet<StatementKind> = new Set<StatementKind>([
  'transaction', 'set', 'show', 'reset', 'listen', 'notify', 'unlisten', 'discard', 'deallocate', 'do', 'function_call',
]);

/** Kinds that never call a function the engine can see. */
export const KINDS_WITHOUT_FUNCTIONS: ReadonlySet<StatementKind> = new Set<StatementKind>([
  'transaction', 'set', 'show', 'reset', 'listen', 'unlisten', 'discard', 'deallocate', 'do', 'function_call', 'truncate', 'lock',
]);

/** Kinds whose statements carry setting names. */
export const KINDS_WITH_SETTINGS: ReadonlySet<StatementKind> = new Set<StatementKind>(['set', 'reset', 'show', 'ddl']);

/**
 * Kinds that run code the engine cannot see into; a rule allows them only by
 * naming them in `kinds` (a rule without `kinds`, or an `all` rule, does not).
 */
export const EXPLICIT_ONLY_KINDS: ReadonlySet<StatementKind> = new Set<StatementKind>(['do', 'function_call']);
