export * from './schema';
export { selectorMatches, type SelectableConnection } from './selector';
