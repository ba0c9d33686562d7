/** One jest run for the whole workspace; unit tests beside the code, `*.int.test.ts` need PG/Redis. */
const swc = [
  '@swc/jest',
  {
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/packages', '<rootDir>/services', '<rootDir>/tests', '<rootDir>/embedded'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.(t|j|mj)s$': swc },
  // jose is ESM-only: let swc transform it (and only it) inside node_modules.
  transformIgnorePatterns: ['/node_modules/(?!(\\.pnpm|jose)([@/]))', '/node_modules/\\.pnpm/(?!jose@)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json', 'node'],
  testTimeout: 30000,
  maxWorkers: 2,
};
