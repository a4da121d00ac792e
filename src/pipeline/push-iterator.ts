/**
 * An async iterator fed by pushes — how change subscriptions become `for await` loops:
 *
 *   const { iterator, push, end } = pushIterator<Step>(() => unsubscribe());
 *
 * Items are queued until read; `end()` finishes the iteration once the queue is drained;
 * `return()` (a `break` out of the loop) ends it at once and calls `onReturn`.
 */
export function pushIterator<T>(onReturn: () => void): { iterator: AsyncIterableIterator<T>; push: (item: T) => void; end: () => void } {
  const queue: T[] = [];
  let wake: (() => void) | undefined;
  let done = false;
  const iterator: AsyncIterableIterator<T> = {
    next: async () => {
      while (queue.length === 0 && !done) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (queue.length > 0) return { value: queue.shift()!, done: false };
      return { value: undefined, done: true };
    },
    return: async () => {
      if (!done) {
        done = true;
        queue.length = 0;
        onReturn();
        wake?.();
      }
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return {
    iterator,
    push: (item) => {
      queue.push(item);
      wake?.();
    },
    end: () => {
      done = true;
      wake?.();
    },
  };
}
