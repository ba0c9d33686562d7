export { System, waitFor, ADMIN_PASSWORD } from './harness';
