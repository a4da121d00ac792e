/** Numeric command-line options of the benchmarks, checked the same way everywhere. */

/** `--NAME` as an integer ≥ `minimum`, or `fallback` when not given. */
export function integerOption(name: string, given: string | undefined, fallback: number, minimum = 1): number {
  const value = given === undefined ? fallback : Number(given);
  if (!Number.isSafeInteger(value) || value < minimum) throw new Error(`--${name} must be an integer ≥ ${minimum}, not ${given}`);
  return value;
}

/** `--NAME` as a number > 0 (fractions allowed), or `fallback` when not given. */
export function positiveOption(name: string, given: string | undefined, fallback: number): number {
  const value = given === undefined ? fallback : Number(given);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, not ${given}`);
  return value;
}
