import { randomBytes } from 'node:crypto';

const CROCKFORD = '0123456789abcdefghjkmnpqrstvwxyz';

/**
 * A public id: a short type prefix and 26 lowercase Crockford base32 chars
 * (48-bit millisecond time then 80 random bits, as a ULID), so ids sort by
 * creation time and serve as pagination cursors.
 */
export const newId = (prefix: string, now: number = Date.now()): string => {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i += 1) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i += 1) rand += CROCKFORD[(bytes[i] as number) % 32];
  return `${prefix}_${time}${rand}`;
};

export const ID_PATTERN = /^[a-z]{2,4}_[0-9a-hjkmnp-tv-z]{26}$/;
