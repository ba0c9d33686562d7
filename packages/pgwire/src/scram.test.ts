import { createHash } from 'node:crypto';
import { md5PasswordResponse, saslPrep, ScramClient, ScramError } from './scram';

// RFC 7677 §3 test vector (user "user", password "pencil").
const nonce = 'rOprNGfwEbeRWgbNEkqO';
const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
const clientFinal = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const serverFinal = 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('ScramClient', () => {
  it('reproduces the RFC 7677 test vector and verifies the server signature', async () => {
    const c = new ScramClient('pencil', { nonce, username: 'user' });
    expect(c.clientFirstMessage().toString()).toBe(`n,,n=user,r=${nonce}`);
    expect((await c.clientFinalMessage(Buffer.from(serverFirst))).toString()).toBe(clientFinal);
    c.verifyServerFinal(Buffer.from(serverFinal));
    expect(c.isServerVerified).toBe(true);
  });

  it('sends an empty user name by default, as libpq does', () => {
    expect(new ScramClient('x', { nonce }).clientFirstMessage().toString()).toBe(`n,,n=,r=${nonce}`);
  });

  it('refuses a wrong server signature, an error attribute and a repeated final', async () => {
    const c = new ScramClient('pencil', { nonce, username: 'user' });
    await c.clientFinalMessage(Buffer.from(serverFirst));
    expect(() => c.verifyServerFinal(Buffer.from('v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='))).toThrow(/does not match/);
    expect(() => c.verifyServerFinal(Buffer.from('e=invalid-proof'))).toThrow(ScramError);
    expect(c.isServerVerified).toBe(false);
  });

  it('refuses a final message before the exchange', () => {
    expect(() => new ScramClient('p', { nonce }).verifyServerFinal(Buffer.from(serverFinal))).toThrow(/Unexpected/);
  });

  it.each([
    ['a nonce that does not extend ours', 'r=other,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096'],
    ['a nonce equal to ours', `r=${nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`],
    ['no salt', `r=${nonce}x,i=4096`],
    ['a bad salt', `r=${nonce}x,s=***,i=4096`],
    ['zero iterations', `r=${nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0`],
    ['too many iterations', `r=${nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=100000000`],
    ['a mandatory extension', `m=ext,r=${nonce}x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096`],
    ['garbage', 'hello'],
  ])('refuses a server-first-message with %s', async (_name, msg) => {
    await expect(new ScramClient('p', { nonce }).clientFinalMessage(Buffer.from(msg))).rejects.toBeInstanceOf(ScramError);
  });
});

describe('saslPrep', () => {
  it('leaves ASCII alone and maps non-ASCII spaces and ligatures', () => {
    expect(saslPrep('pa ss').toString()).toBe('pa ss');
    expect(saslPrep('a\u00a0b').toString()).toBe('a b');
    expect(saslPrep('\ufb01x').toString()).toBe('fix');
    expect(saslPrep('a\u00adb').toString()).toBe('ab');
  });
  it('falls back to the raw bytes for prohibited characters, as PostgreSQL does', () => {
    expect(saslPrep('a\u0007b\u00e9').toString()).toBe('a\u0007b\u00e9');
  });
});

describe('md5PasswordResponse', () => {
  it('computes md5(md5(password || user) || salt)', () => {
    const salt = Buffer.from([1, 2, 3, 4]);
    const inner = createHash('md5').update('secretalice').digest('hex');
    const outer = createHash('md5').update(Buffer.concat([Buffer.from(inner), salt])).digest('hex');
    expect(md5PasswordResponse('alice', 'secret', salt)).toBe(`md5${outer}`);
  });
});
