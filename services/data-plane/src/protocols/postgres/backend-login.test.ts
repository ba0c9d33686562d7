import type { AcceptedStartup } from '@pa/pgwire';
import { chooseDatabase } from './backend-login';

const startup = (user: string, database: string): AcceptedStartup => ({ user, database, settings: new Map(), protocolOptions: [] });

describe('chooseDatabase', () => {
  it("uses the grant's database when the client asks for it or for nothing (its user name)", () => {
    expect(chooseDatabase('prod', startup('alice', 'prod'))).toBe('prod');
    expect(chooseDatabase('prod', startup('alice', 'alice'))).toBe('prod');
  });

  it('refuses another database with 08004, naming the one the grant serves', () => {
    expect(() => chooseDatabase('prod', startup('alice', 'staging'))).toThrow(expect.objectContaining({ code: 'PG_STARTUP_REFUSED', message: expect.stringContaining('it serves database "prod"') }));
  });

  it("uses the client's database when the grant names none", () => {
    expect(chooseDatabase(null, startup('alice', 'anything'))).toBe('anything');
  });
});
