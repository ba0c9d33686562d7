// ESLint: strict TypeScript plus the import rules of STYLE.md §1 — services never
// import each other, packages never import services, no deep imports into another
// package's src/, and only config.ts reads process.env.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const noDeepImports = {
  group: ['@pa/*/src/*', '@pa/*/src', '../../packages/*', '../../../packages/*'],
  message: 'Import a package through its public entry (@pa/<name>), not its files.',
};

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', 'packages/contracts/src/gen/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: "MemberExpression[object.name='process'][property.name='env']", message: 'Read the environment only in config.ts (loadConfig).' },
      ],
    },
  },
  {
    files: ['packages/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noDeepImports, { group: ['@pa/control-plane', '@pa/data-plane', '**/services/**'], message: 'Packages never import services.' }] }],
    },
  },
  {
    files: ['services/control-plane/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noDeepImports, { group: ['@pa/data-plane', '**/data-plane/**'], message: 'Services never import each other.' }] }],
    },
  },
  {
    files: ['services/data-plane/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noDeepImports, { group: ['@pa/control-plane', '**/control-plane/**', 'pg'], message: 'The data plane never imports the control plane or a client for its database.' }] }],
    },
  },
  {
    files: ['services/data-plane/src/protocols/*/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [noDeepImports, { group: ['../http/*', '../tcp/*', '../postgres/*'], message: 'A protocol handler never imports another handler.' }] }],
    },
  },
  {
    files: ['**/config.ts', '**/*.test.ts', 'packages/testing/**/*.ts', 'tests/**/*.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', module: 'writable', require: 'readonly', __dirname: 'readonly' } },
    rules: { 'no-console': 'off', 'no-restricted-syntax': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
);
