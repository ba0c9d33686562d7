import { randomFillSync } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

// Random bytes are drawn from the CSPRNG in blocks (one call per 256 ids) and
// the time part is reused within a millisecond: ids are minted per audit event
// on the proxy's hot path, where a randomBytes call per id showed in profiles.
const POOL = Buffer.alloc(4096);
let poolAt = POOL.length;
let lastMs = -1;
let lastTime = '';

const timePart = (now: number): string => {
  if (now === lastMs) return lastTime;
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  lastMs = now;
  lastTime = time;
  return time;
};

/**
 * A public id: a short type prefix and 26 lowercase Crockford base32 chars
 * (48-bit millisecond time then 80 random bits, as a ULID), so ids sort by
 * creation time and serve as pagination cursors.
 */
export const newId = (prefix: string, now: number = Date.now()): string => {
  if (poolAt + 16 > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  let rand = '';
  for (let i = 0; i < 16; i += 1) rand += CROCKFORD[(POOL[poolAt + i] as number) % 32];
  // Used bytes are overwritten so a pool snapshot never reveals ids already handed out.
  POOL.fill(0, poolAt, poolAt + 16);
  poolAt += 16;
  return `${prefix}_${timePart(now)}${rand}`;
};

export const ID_PATTERN = /^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$/;
