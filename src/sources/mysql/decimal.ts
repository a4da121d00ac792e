/**
 * MySQL's binary DECIMAL(precision, scale), as row events and binary JSON carry it: the integral
 * and fractional digits in groups of 9 per 4 bytes (a partial group in fewer), big-endian, the
 * sign in the top bit of the first byte and a negative number's bytes inverted. Read exactly, as
 * a Decimal with the column's scale (printed `-1.50`).
 */

import { Decimal } from '../../core/index.ts';

/** Bytes a digit count that is not a whole group takes. */
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** The bytes a DECIMAL(precision, scale) value takes. */
export function decimalSize(precision: number, scale: number): number {
  const integral = precision - scale;
  return Math.floor(integral / 9) * 4 + DIG2BYTES[integral % 9]! + Math.floor(scale / 9) * 4 + DIG2BYTES[scale % 9]!;
}

/**
 * The value in `data` (exactly decimalSize bytes) as a Decimal of the column's scale; `fail` makes
 * the error for a group with more digits than it may hold (the bytes are not a decimal of this
 * precision). The mantissa is summed in a double while it stays below 2^53, then as a bigint.
 */
export function decodeDecimal(data: Uint8Array, precision: number, scale: number, fail: (what: string) => Error): Decimal {
  if (data.length === 0) return new Decimal(0n, scale);
  const integral = precision - scale;
  const first = data[0]!;
  const negative = (first & 0x80) === 0;
  const flip = negative ? 0xff : 0;
  let at = 0;
  let small = 0;
  let big: bigint | undefined;
  let digitsSoFar = 0;
  const group = (length: number, digits: number): void => {
    let value = 0;
    for (let i = 0; i < length; i++) {
      const byte = (at === 0 ? data[at]! ^ 0x80 : data[at]!) ^ flip;
      at++;
      value = value * 256 + byte;
    }
    if (value >= POW10[digits]!) throw fail(`a decimal(${precision},${scale}) with a group of ${value}, more than ${digits} digits`);
    digitsSoFar += digits;
    if (big === undefined && digitsSoFar <= 15) small = small * POW10[digits]! + value;
    else {
      big ??= BigInt(small);
      big = big * BIG_POW10[digits]! + BigInt(value);
    }
  };
  if (integral % 9 > 0) group(DIG2BYTES[integral % 9]!, integral % 9);
  for (let i = 0; i < Math.floor(integral / 9); i++) group(4, 9);
  for (let i = 0; i < Math.floor(scale / 9); i++) group(4, 9);
  if (scale % 9 > 0) group(DIG2BYTES[scale % 9]!, scale % 9);
  const mantissa = big ?? BigInt(small);
  return new Decimal(negative ? -mantissa : mantissa, scale);
}

const POW10 = Array.from({ length: 10 }, (_, i) => 10 ** i);
const BIG_POW10 = Array.from({ length: 10 }, (_, i) => 10n ** BigInt(i));
