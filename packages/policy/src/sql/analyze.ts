import { fingerprintSync, scanSync } from 'libpg-query';
import { STATEMENT_KINDS, type StatementKind } from '../schema';
import { formatObjectName, splitPatternParts, type ObjectName } from '../names';
import { FORBIDDEN_NODES, kindOfNode } from './statement-kinds';

/**
 * What one SQL statement does, read from its parse tree: the facts a policy is
 * judged on. Plain data (it crosses worker-thread boundaries).
 */
export interface StatementFacts {
  /** The statement's own kind (its top-level node). */
  readonly kind: StatementKind;
  /**
   * Everything the statement does, `kind` included: data-modifying CTEs,
   * `EXPLAIN ANALYZE <dml>`, `COPY (<dml>) TO`, `SELECT … INTO` (ddl + insert),
   * `INSERT … ON CONFLICT DO UPDATE` (update), `FOR UPDATE` (lock),
   * `set_config` (set), `current_setting` (show), `pg_notify` (notify).
   */
  readonly kinds: readonly StatementKind[];
  /** Every relation read or written, anywhere in the tree (CTE names excluded). */
  readonly relations: readonly ObjectName[];
  /** Whether the statement touches a relation named only at run time (e.g. `nextval($1)`). */
  readonly dynamicRelation: boolean;
  /** Every function called, anywhere in the tree. */
  readonly functions: readonly ObjectName[];
  /** Setting names set, reset or shown (lower case; `all` for RESET ALL / SHOW ALL). */
  readonly settings: readonly string[];
  /** Set when the statement is refused whatever the policy says; the reason. */
  readonly forbidden: string | undefined;
  /** libpg-query fingerprint of the statement (same query with other constants → same value). */
  readonly fingerprint: string;
  /** The statement's text, trimmed. */
  readonly text: string;
  /** Comment-free, whitespace-collapsed text (only computed when a rule needs it). */
  readonly normalizedText: string | undefined;
}

interface Frame {
  readonly value: unknown;
  readonly key: string;
  readonly scope: ReadonlySet<string>;
  readonly executed: boolean;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

const EMPTY_SCOPE: ReadonlySet<string> = new Set();
const DML_KIND: Readonly<Record<string, StatementKind>> = {
  InsertStmt: 'insert',
  UpdateStmt: 'update',
  DeleteStmt: 'delete',
  MergeStmt: 'merge',
};
const TABLE_LIKE_OBJECTS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_INDEX', 'OBJECT_FOREIGN_TABLE']);
const TRUE_SETTING_VALUES = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const UTF8_NAMES = new Set(['utf8', 'utf-8', 'unicode']);
const SEQUENCE_FUNCTIONS = new Set(['nextval', 'currval', 'setval']);
const KIND_ORDER = new Map(STATEMENT_KINDS.map((k, i) => [k, i]));

/** The constant in an A_Const node (or a bare String node) as text, if it is one. */
const constantText = (node: unknown): string | undefined => {
  if (!isObj(node)) return undefined;
  const c = isObj(node.A_Const) ? node.A_Const : isObj(node.String) ? { sval: node.String } : undefined;
  if (!c) return undefined;
  if (isObj(c.sval)) return str(c.sval.sval) ?? '';
  if (isObj(c.ival)) return String(c.ival.ival ?? 0);
  if (isObj(c.boolval)) return c.boolval.boolval === true ? 'true' : 'false';
  if (isObj(c.fval)) return str(c.fval.fval);
  return undefined;
};

const namesOf = (list: unknown): string[] =>
  Array.isArray(list) ? list.map((n) => (isObj(n) && isObj(n.String) ? (str(n.String.sval) ?? '') : '')) : [];

const toObjectName = (parts: readonly string[]): ObjectName | undefined => {
  const name = parts[parts.length - 1];
  if (name === undefined || name === '') return undefined;
  return { schema: parts.length >= 2 ? parts[parts.length - 2] : undefined, name };
};

/** Collects facts while walking one statement's tree. */
class Collector {
  readonly kinds = new Set<StatementKind>();
  readonly relations = new Map<string, ObjectName>();
  readonly functions = new Map<string, ObjectName>();
  readonly settings = new Set<string>();
  dynamicRelation = false;
  forbidden: string | undefined;

  addRelation(n: ObjectName | undefined): void {
    if (n === undefined) {
      this.dynamicRelation = true;
      return;
    }
    this.relations.set(formatObjectName(n), n);
  }

  forbid(reason: string): void {
    this.forbidden ??= reason;
  }
}

/** Whether EXPLAIN's options ask it to run the statement. */
const explainAnalyzes = (options: unknown): boolean =>
  Array.isArray(options) &&
  options.some((o) => {
    const d = isObj(o) && isObj(o.DefElem) ? o.DefElem : undefined;
    if (!d || d.defname !== 'analyze') return false;
    const v = constantText(d.arg);
    return v === undefined || TRUE_SETTING_VALUES.has(v.toLowerCase());
  });

const visitVariableSet = (obj: Obj, c: Collector): void => {
  const kind = str(obj.kind);
  const name = (str(obj.name) ?? '').toLowerCase();
  if (kind === 'VAR_RESET_ALL') {
    c.settings.add('all');
    return;
  }
  if (kind === 'VAR_SET_MULTI') {
    if (name === 'session characteristics' && Array.isArray(obj.args)) {
      for (const a of obj.args) if (isObj(a) && isObj(a.DefElem)) c.settings.add(`default_${str(a.DefElem.defname) ?? ''}`);
    }
    return;
  }
  c.settings.add(name);
  if (kind !== 'VAR_SET_VALUE') return;
  const values = Array.isArray(obj.args) ? obj.args.map(constantText) : [];
  if (name === 'client_encoding' && !values.every((v) => v !== undefined && UTF8_NAMES.has(v.toLowerCase()))) {
    c.forbid('client_encoding can only be UTF8 through the proxy');
  }
  if (name === 'standard_conforming_strings' && !values.every((v) => v !== undefined && TRUE_SETTING_VALUES.has(v.toLowerCase()))) {
    c.forbid('standard_conforming_strings cannot be turned off through the proxy');
  }
};

const visitFuncCall = (obj: Obj, c: Collector, executed: boolean): void => {
  const parts = namesOf(obj.funcname);
  const fn = toObjectName(parts);
  if (!fn) return;
  c.functions.set(formatObjectName(fn), fn);
  const args = Array.isArray(obj.args) ? obj.args : [];
  const first = constantText(args[0]);
  if (SEQUENCE_FUNCTIONS.has(fn.name)) {
    let seq: ObjectName | undefined;
    try {
      seq = first === undefined ? undefined : toObjectName(splitPatternParts(first));
    } catch {
      seq = undefined;
    }
    c.addRelation(seq);
  } else if (fn.name === 'set_config') {
    if (executed) c.kinds.add('set');
    if (first === undefined) c.forbid('set_config with a setting name that is not a constant cannot be judged');
    else {
      const setting = first.toLowerCase();
      c.settings.add(setting);
      if (setting === 'client_encoding' || setting === 'standard_conforming_strings') c.forbid(`${setting} cannot be changed through the proxy`);
    }
  } else if (fn.name === 'current_setting') {
    if (executed) c.kinds.add('show');
    c.settings.add(first === undefined ? '*' : first.toLowerCase());
  } else if (fn.name === 'pg_notify') {
    if (executed) c.kinds.add('notify');
  }
};

/**
 * Walks a statement's whole tree (iteratively: no recursion limit to hit) and
 * collects relations, functions, settings and what it does.
 */
const walk = (root: unknown, rootKey: string, c: Collector): void => {
  const stack: Frame[] = [{ value: root, key: rootKey, scope: EMPTY_SCOPE, executed: true }];
  for (;;) {
    const frame = stack.pop();
    if (frame === undefined) return;
    const { value, key, scope, executed } = frame;
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i -= 1) stack.push({ value: value[i], key, scope, executed });
      continue;
    }
    if (!isObj(value)) continue;

    // Relations: a wrapped RangeVar (a FROM item) may name a CTE in scope; an
    // unwrapped one (a statement's target: INSERT INTO, UPDATE, INTO, COPY, DDL…)
    // always names a real relation, as PostgreSQL resolves targets.
    if (typeof value.relname === 'string') {
      const schema = str(value.schemaname);
      if (!(key === 'RangeVar' && schema === undefined && scope.has(value.relname))) {
        c.addRelation({ schema, name: value.relname });
      }
      continue;
    }
    if (key === 'FuncCall' || key === 'funccall') visitFuncCall(value, c, executed);
    if (typeof value.kind === 'string' && value.kind.startsWith('VAR_')) visitVariableSet(value, c);
    if (key === 'VariableShowStmt') c.settings.add((str(value.name) ?? '').toLowerCase());

    const dml = DML_KIND[key];
    if (dml !== undefined && executed) {
      c.kinds.add(dml);
      if (key === 'InsertStmt' && isObj(value.onConflictClause) && value.onConflictClause.action === 'ONCONFLICT_UPDATE') c.kinds.add('update');
    }
    if (key === 'SelectStmt' && executed) {
      if (isObj(value.intoClause)) {
        c.kinds.add('ddl');
        c.kinds.add('insert');
      }
      if (Array.isArray(value.lockingClause) && value.lockingClause.length > 0) c.kinds.add('lock');
    }
    if (key === 'CreateTableAsStmt' && executed) {
      c.kinds.add('ddl');
      if (!(isObj(value.into) && value.into.skipData === true)) c.kinds.add('insert');
    }
    if (key === 'CopyStmt') {
      if (value.is_program === true) c.forbid('COPY … PROGRAM is never allowed through the proxy');
      else if (typeof value.filename === 'string') c.forbid('COPY to or from a server file is never allowed through the proxy');
    }
    if (key === 'DropStmt' && TABLE_LIKE_OBJECTS.has(str(value.removeType) ?? '') && Array.isArray(value.objects)) {
      for (const o of value.objects) if (isObj(o) && isObj(o.List)) c.addRelation(toObjectName(namesOf(o.List.items)));
    }
    if (key === 'GrantStmt' && value.targtype === 'ACL_TARGET_ALL_IN_SCHEMA') c.dynamicRelation = true;
    const forbiddenNode = FORBIDDEN_NODES[key];
    if (forbiddenNode !== undefined) c.forbid(forbiddenNode);

    if (key === 'ExplainStmt' || key === 'PrepareStmt' || key === 'DeclareCursorStmt') {
      // These wrap one statement and run it (EXPLAIN only with ANALYZE): it counts as done.
      const runs = executed && (key !== 'ExplainStmt' || explainAnalyzes(value.options));
      const inner = isObj(value.query) ? value.query : {};
      const innerType = Object.keys(inner)[0];
      const innerKind = innerType === undefined ? undefined : topKind(innerType, isObj(inner[innerType]) ? (inner[innerType] as Obj) : {});
      if (runs && innerKind !== undefined) c.kinds.add(innerKind);
      stack.push({ value: value.query, key: 'query', scope, executed: runs });
      for (const [k, v] of Object.entries(value)) {
        if (k !== 'query' && v !== null && typeof v === 'object') stack.push({ value: v, key: k, scope, executed });
      }
      continue;
    }

    let bodyScope = scope;
    const withClause = isObj(value.withClause) ? value.withClause : undefined;
    if (withClause) {
      const ctes = (Array.isArray(withClause.ctes) ? withClause.ctes : []).map((cte) =>
        isObj(cte) && isObj(cte.CommonTableExpr) ? cte.CommonTableExpr : {},
      );
      const names = ctes.map((cte) => str(cte.ctename) ?? '');
      bodyScope = new Set([...scope, ...names]);
      const recursive = withClause.recursive === true;
      ctes.forEach((cte, i) => {
        const visible = recursive ? bodyScope : new Set([...scope, ...names.slice(0, i)]);
        stack.push({ value: cte.ctequery, key: 'ctequery', scope: visible, executed });
      });
    }
    for (const [k, v] of Object.entries(value)) {
      if (k === 'withClause' || v === null || typeof v !== 'object') continue;
      stack.push({ value: v, key: k, scope: bodyScope, executed });
    }
  }
};

/** The top-level kind of a statement, for the nodes whose kind depends on fields. */
const topKind = (nodeType: string, node: Obj): StatementKind | undefined => {
  switch (nodeType) {
    case 'VariableSetStmt': {
      const k = str(node.kind);
      if (k === 'VAR_RESET' || k === 'VAR_RESET_ALL') return 'reset';
      if (k === 'VAR_SET_MULTI' && str(node.name)?.toLowerCase() === 'transaction') return 'transaction';
      return 'set';
    }
    case 'CopyStmt':
      return node.is_from === true ? 'copy_from' : 'copy_to';
    case 'VacuumStmt':
      return node.is_vacuumcmd === true ? 'vacuum' : 'analyze';
    case 'LoadStmt':
      return 'utility';
    default:
      return kindOfNode(nodeType);
  }
};

/** Builds a statement's comment-free, whitespace-collapsed text from the scanner's tokens. */
export const normalizeStatementText = (text: string): string => {
  const tokens = scanSync(text).tokens;
  let out = '';
  let prevEnd = -1;
  for (const t of tokens) {
    if (t.tokenName === 'C_COMMENT' || t.tokenName === 'SQL_COMMENT') continue;
    if (prevEnd >= 0 && t.start > prevEnd) out += ' ';
    out += t.text;
    prevEnd = t.end;
  }
  return out.replace(/\s*;$/, '').trim();
};

/** Options of statement analysis. */
export interface AnalyzeOptions {
  /** Compute `normalizedText` for each statement (needed by `pattern` rules). */
  readonly withNormalizedText: boolean;
}

/** A raw statement from the parse result. */
export interface RawStatement {
  readonly stmt?: Obj;
  readonly stmt_location?: number;
  readonly stmt_len?: number;
}

/**
 * Slices statement texts out of the query. Parse-tree locations are UTF-8 byte
 * offsets, so non-ASCII queries are sliced as bytes.
 */
const statementSlicer = (sql: string): ((start: number, len: number) => string) => {
  if (Buffer.byteLength(sql, 'utf8') === sql.length) {
    return (start, len) => (len > 0 ? sql.slice(start, start + len) : sql.slice(start));
  }
  const bytes = Buffer.from(sql, 'utf8');
  return (start, len) => bytes.subarray(start, len > 0 ? start + len : bytes.length).toString('utf8');
};

/** Turns a parse result into per-statement facts. */
export const analyzeStatements = (sql: string, stmts: readonly RawStatement[], options: AnalyzeOptions): StatementFacts[] => {
  const slice = statementSlicer(sql);
  return stmts.map((raw) => {
    const text = slice(raw.stmt_location ?? 0, raw.stmt_len ?? 0).trim();
    const stmt = raw.stmt ?? {};
    const nodeType = Object.keys(stmt)[0] ?? '';
    const node = isObj(stmt[nodeType]) ? (stmt[nodeType] as Obj) : {};
    const c = new Collector();
    const kind = topKind(nodeType, node);
    if (kind === undefined) c.forbid(`statement type ${nodeType || '(none)'} is not known to the policy engine`);
    const primary = kind ?? 'utility';
    c.kinds.add(primary);
    walk(node, nodeType, c);
    let fingerprint = '';
    try {
      fingerprint = fingerprintSync(text);
    } catch {
      fingerprint = '';
    }
    return {
      kind: primary,
      kinds: [...c.kinds].sort((a, b) => (KIND_ORDER.get(a) ?? 0) - (KIND_ORDER.get(b) ?? 0)),
      relations: [...c.relations.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, n]) => n),
      dynamicRelation: c.dynamicRelation,
      functions: [...c.functions.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, n]) => n),
      settings: [...c.settings].sort(),
      forbidden: c.forbidden,
      fingerprint,
      text,
      normalizedText: options.withNormalizedText ? normalizeStatementText(text) : undefined,
    };
  });
};
