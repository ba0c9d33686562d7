/** `pa admin …`: the common calls of the admin REST API. */
import type { CommandSpec } from '../../args/parser';
import type { CommandContext } from '../../command-context';
import { auditCommand } from './audit';
import { connectionsCommand } from './connections';
import { grantsCommand } from './grants';
import { policiesCommand } from './policies';
import { rolesCommand } from './roles';
import { keysCommand, settingsCommand } from './settings';
import { usersCommand } from './users';

export const adminCommand: CommandSpec<CommandContext> = {
  name: 'admin',
  summary: 'Administer users, roles, connections, policies, grants, audit',
  description: 'Administer the control plane over its REST API. Each call needs the matching permission (users:write, audit:read, …).',
  subcommands: [usersCommand, rolesCommand, connectionsCommand, policiesCommand, grantsCommand, auditCommand, settingsCommand, keysCommand],
};
