/** Deadlines for promises that may never settle, and the abort signals that go with them. */

/** The error an abandoned operation rejects with (`name` `TimeoutError`, as `AbortSignal.timeout`'s reason). */
export class DeadlineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeoutError';
  }
}

/**
 * Settles with `work`, or rejects when `signal` aborts first (with the signal's reason). The
 * work is not cancelled by this (pass the signal to it for that); a late rejection of it is
 * handled. `onLateValue` receives what the work resolves to after it was abandoned, to release it.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal | undefined, onLateValue?: (value: T) => void): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.then(onLateValue, () => undefined);
    return Promise.reject(reasonOf(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      work.then(onLateValue, () => undefined);
      reject(reasonOf(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        if (signal.aborted) return;
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/**
 * Runs `op` with a signal that aborts after `ms` (or when `parent` aborts), and rejects at that
 * moment even if `op` ignores the signal (a value it resolves to later goes to `onLateValue`).
 */
export async function withDeadline<T>(
  ms: number,
  what: string,
  op: (signal: AbortSignal) => Promise<T>,
  parent?: AbortSignal,
  onLateValue?: (value: T) => void,
): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DeadlineError(`${what} took longer than ${ms} ms`)), ms);
  const onParentAbort = (): void => controller.abort(parent!.reason);
  if (parent?.aborted) onParentAbort();
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  try {
    return await abortable(op(controller.signal), controller.signal, onLateValue);
  } finally {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParentAbort);
  }
}

function reasonOf(signal: AbortSignal): unknown {
  return signal.reason ?? new DeadlineError('the operation was aborted');
}
