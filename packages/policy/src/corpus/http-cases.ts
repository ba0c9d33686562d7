import type { CorpusPolicyName } from './policies';

/**
 * The HTTP corpus: requests with the decisions expected under the corpus HTTP
 * policies, and the normalised target the proxy must forward (null when the
 * target is refused outright).
 */
export interface HttpCase {
  readonly class: string;
  readonly method: string;
  readonly target: string;
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** The normalised target (null: refused). */
  readonly normalized: string | null;
  readonly expect: Partial<Record<CorpusPolicyName, 'allow' | 'deny'>>;
  /** A fragment every denial's reason must contain. */
  readonly reason?: string;
}

const JSON_CT = { 'content-type': 'application/json' } as const;

export const HTTP_CASES: readonly HttpCase[] = [
  // ── Plain matches ────────────────────────────────────────────────────────
  { class: 'glob', method: 'GET', target: '/api/items', normalized: '/api/items', expect: { api: 'allow', api_all: 'allow' } },
  { class: 'glob', method: 'GET', target: '/api', normalized: '/api', expect: { api: 'allow' } },
  { class: 'glob', method: 'GET', target: '/api/', normalized: '/api/', expect: { api: 'allow' } },
  { class: 'glob', method: 'HEAD', target: '/api/items/7', normalized: '/api/items/7', expect: { api: 'allow' } },
  { class: 'glob', method: 'GET', target: '/apix', normalized: '/apix', expect: { api: 'deny', api_all: 'allow' } },
  { class: 'glob', method: 'GET', target: '/API/items', normalized: '/API/items', expect: { api: 'deny' } },
  { class: 'glob', method: 'GET', target: '/files/readme.txt', normalized: '/files/readme.txt', expect: { api: 'allow' } },
  { class: 'glob', method: 'GET', target: '/files/dir/readme.txt', normalized: '/files/dir/readme.txt', expect: { api: 'deny' } },
  { class: 'glob', method: 'GET', target: '/files/readme.txt.bak', normalized: '/files/readme.txt.bak', expect: { api: 'deny' } },
  { class: 'glob', method: 'GET', target: '/', normalized: '/', expect: { api: 'deny', api_all: 'allow' } },
  { class: 'method', method: 'DELETE', target: '/api/items/7', normalized: '/api/items/7', expect: { api: 'deny', api_all: 'deny' } },
  { class: 'method', method: 'POST', target: '/api/items', headers: JSON_CT, normalized: '/api/items', expect: { api: 'allow' } },
  { class: 'method', method: 'POST', target: '/api/items', headers: { 'Content-Type': 'application/json; charset=utf-8' }, normalized: '/api/items', expect: { api: 'allow' } },
  { class: 'method', method: 'POST', target: '/api/items', headers: { 'content-type': 'text/plain' }, normalized: '/api/items', expect: { api: 'deny' } },
  { class: 'method', method: 'POST', target: '/api/items', normalized: '/api/items', expect: { api: 'deny', api_all: 'allow' } },
  { class: 'method', method: 'POST', target: '/api/items', headers: { 'content-type': ['application/json', 'text/plain'] }, normalized: '/api/items', expect: { api: 'deny' } },
  { class: 'method', method: 'get', target: '/api/items', normalized: null, expect: { api: 'deny', api_all: 'deny' }, reason: 'upper-case' },
  { class: 'method', method: 'G ET', target: '/api/items', normalized: null, expect: { api_all: 'deny' } },
  { class: 'regex', method: 'GET', target: '/v1/status', normalized: '/v1/status', expect: { api: 'allow' } },
  { class: 'regex', method: 'GET', target: '/v12/status', normalized: '/v12/status', expect: { api: 'allow' } },
  { class: 'regex', method: 'GET', target: '/v1/status/x', normalized: '/v1/status/x', expect: { api: 'deny' } },
  { class: 'regex', method: 'GET', target: '/x/v1/status', normalized: '/x/v1/status', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?q=abc', normalized: '/search?q=abc', expect: { api: 'allow' } },
  { class: 'query', method: 'GET', target: '/search?q=abc&q=ABC', normalized: '/search?q=abc&q=ABC', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?q=ab%20c', normalized: '/search?q=ab%20c', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?q=ab+c', normalized: '/search?q=ab+c', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?q=%61bc', normalized: '/search?q=abc', expect: { api: 'allow' } },
  { class: 'query', method: 'GET', target: '/search', normalized: '/search', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?', normalized: '/search', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/search?r=1', normalized: '/search?r=1', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/api/items?format=csv', normalized: '/api/items?format=csv', expect: { api: 'deny' }, reason: 'no-export' },
  { class: 'query', method: 'GET', target: '/api/items?format=json&format=csv', normalized: '/api/items?format=json&format=csv', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/api/items?f%6Frmat=csv', normalized: '/api/items?format=csv', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/api/items?format=%63sv', normalized: '/api/items?format=csv', expect: { api: 'deny' } },
  { class: 'query', method: 'GET', target: '/api/items?format=json', normalized: '/api/items?format=json', expect: { api: 'allow' } },
  { class: 'query', method: 'GET', target: '/api/items?redirect=%2Fadmin', normalized: '/api/items?redirect=%2Fadmin', expect: { api: 'allow' } },
  { class: 'header', method: 'GET', target: '/api/items', headers: { 'X-Debug': '1' }, normalized: '/api/items', expect: { api: 'deny' }, reason: 'no-debug' },
  { class: 'header', method: 'GET', target: '/api/items', headers: { 'x-debug': '' }, normalized: '/api/items', expect: { api: 'deny' } },

  // ── Traversal and encodings ──────────────────────────────────────────────
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/../admin', normalized: '/admin', expect: { api: 'deny', api_all: 'allow' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/items/../admin/users', normalized: '/api/admin/users', expect: { api: 'deny' }, reason: 'No admin API' },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/./admin/users', normalized: '/api/admin/users', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/%2e%2e/admin', normalized: '/admin', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/%2E%2E/%2E%2E/etc/passwd', normalized: '/etc/passwd', expect: { api: 'deny', api_all: 'allow' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/.%2e/admin', normalized: '/admin', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/x/%2e/../admin/y', normalized: '/api/admin/y', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/../../api/items', normalized: '/api/items', expect: { api: 'allow' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/files/../api/admin/x', normalized: '/api/admin/x', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/files/a/..', normalized: '/files/', expect: { api: 'deny' } },
  { class: 'bypass:dot-segments', method: 'GET', target: '/api/items/...', normalized: '/api/items/...', expect: { api: 'allow' } },
  { class: 'bypass:double-slash', method: 'GET', target: '/api//admin/users', normalized: '/api/admin/users', expect: { api: 'deny' } },
  { class: 'bypass:double-slash', method: 'GET', target: '/api///admin', normalized: '/api/admin', expect: { api: 'deny' } },
  { class: 'bypass:double-slash', method: 'GET', target: '//evil.example/api', normalized: null, expect: { api: 'deny', api_all: 'deny' } },
  { class: 'bypass:double-slash', method: 'GET', target: '/api/x/..//admin/y', normalized: '/api/admin/y', expect: { api: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/%61dmin/users', normalized: '/api/admin/users', expect: { api: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/%61pi/items', normalized: '/api/items', expect: { api: 'allow' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/admin%2fusers', normalized: null, expect: { api: 'deny', api_all: 'deny' }, reason: 'encoded slash' },
  { class: 'bypass:encoding', method: 'GET', target: '/api/admin%2Fusers', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/admin%5cusers', normalized: null, expect: { api_all: 'deny' }, reason: 'backslash' },
  { class: 'bypass:encoding', method: 'GET', target: '/api\\admin', normalized: null, expect: { api_all: 'deny' }, reason: 'backslash' },
  { class: 'bypass:encoding', method: 'GET', target: '/api/items%00.txt', normalized: null, expect: { api_all: 'deny' }, reason: 'NUL' },
  { class: 'bypass:encoding', method: 'GET', target: '/search?q=a%00', normalized: null, expect: { api: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/%zz', normalized: null, expect: { api_all: 'deny' }, reason: 'malformed' },
  { class: 'bypass:encoding', method: 'GET', target: '/api/%4', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/%252e%252e/admin', normalized: '/api/%252e%252e/admin', expect: { api: 'allow' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/caf%c3%a9', normalized: '/api/caf%C3%A9', expect: { api: 'allow' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/café', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/a b', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/items#frag', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:encoding', method: 'GET', target: '/api/%7Euser', normalized: '/api/~user', expect: { api: 'allow' } },
  { class: 'bypass:absolute-form', method: 'GET', target: 'http://backend.internal/api/items', normalized: null, expect: { api: 'deny', api_all: 'deny' }, reason: 'origin-form' },
  { class: 'bypass:absolute-form', method: 'GET', target: 'https://x/api', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:absolute-form', method: 'CONNECT', target: 'backend.internal:443', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:absolute-form', method: 'OPTIONS', target: '*', normalized: null, expect: { api_all: 'deny' }, reason: 'asterisk' },
  { class: 'bypass:absolute-form', method: 'GET', target: '', normalized: null, expect: { api_all: 'deny' } },
  { class: 'bypass:absolute-form', method: 'GET', target: 'api/items', normalized: null, expect: { api: 'deny' } },
];
