import { AppError, type ErrorCode } from '@pa/kit';

/**
 * The AppError `fn` throws, checked to carry `code`; throws (failing the test)
 * when `fn` throws nothing, or something else.
 */
export const thrownAppError = (fn: () => unknown, code: ErrorCode): AppError => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof AppError)) throw new Error(`expected an AppError ${code}, got: ${String(err)}`);
    if (err.code !== code) throw new Error(`expected ${code}, got ${err.code}: ${err.message}`);
    return err;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
};
