import type { Timestamp } from './gen/google/protobuf/timestamp';

/** Converts a Date to a protobuf Timestamp (millisecond precision). */
export const timestampFromDate = (date: Date): Timestamp => {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 };
};

/** Converts a protobuf Timestamp to a Date (sub-millisecond precision is dropped). */
export const dateFromTimestamp = (ts: Timestamp): Date => new Date(ts.seconds * 1000 + Math.floor(ts.nanos / 1_000_000));
