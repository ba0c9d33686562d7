export { testDatabaseUrl, withDatabase, ensureTemplate, createTestDatabase, type TemplateSpec, type TestDatabase } from './databases';
export { testRedisUrl, createTestRedis, type TestRedis } from './redis';
export { freePort } from './ports';
export { startThrowawayPostgres, type ThrowawayPostgres, type ThrowawayPostgresOptions, type ThrowawayAuth } from './throwaway-postgres';
export { startFaultProxy, type FaultProxy } from './fault-proxy';
export { createTestPki, type TestPki, type TestCa, type TestCertificate, type IssueOptions } from './certificates';
export { thrownAppError } from './errors';
