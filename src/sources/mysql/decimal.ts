/**
 * MySQL's binary DECIMAL(precision, scale), as row events and binary JSON carry it: the integral
 * and fractional digits in groups of 9 per 4 bytes (a partial group in fewer), big-endian, the
 * sign in the top bit of the first byte and a negative number's bytes inverted. Read exactly, as
 * text with the column's scale (`-1.50`).
 */

/** Bytes a digit count that is not a whole group takes. */
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/** The bytes a DECIMAL(precision, scale) value takes. */
export function decimalSize(precision: number, scale: number): number {
  const integral = precision - scale;
  return Math.floor(integral / 9) * 4 + DIG2BYTES[integral % 9]! + Math.floor(scale / 9) * 4 + DIG2BYTES[scale % 9]!;
}

/**
 * The value in `data` (exactly decimalSize bytes) as text; `fail` makes the error for a group
 * with more digits than it may hold (the bytes are not a decimal of this precision).
 */
export function decodeDecimal(data: Uint8Array, precision: number, scale: number, fail: (what: string) => Error): string {
  if (data.length === 0) return '0';
  const integral = precision - scale;
  const bytes = Uint8Array.from(data);
  const negative = (bytes[0]! & 0x80) === 0;
  bytes[0]! ^= 0x80;
  if (negative) for (let i = 0; i < bytes.length; i++) bytes[i] = ~bytes[i]! & 0xff;
  let at = 0;
  const group = (length: number, digits: number): string => {
    let value = 0;
    for (let i = 0; i < length; i++) value = value * 256 + bytes[at++]!;
    if (value >= 10 ** digits) throw fail(`a decimal(${precision},${scale}) with a group of ${value}, more than ${digits} digits`);
    return String(value).padStart(digits, '0');
  };
  let whole = '';
  if (integral % 9 > 0) whole += group(DIG2BYTES[integral % 9]!, integral % 9);
  for (let i = 0; i < Math.floor(integral / 9); i++) whole += group(4, 9);
  whole = whole.replace(/^0+/, '') || '0';
  let fraction = '';
  for (let i = 0; i < Math.floor(scale / 9); i++) fraction += group(4, 9);
  if (scale % 9 > 0) fraction += group(DIG2BYTES[scale % 9]!, scale % 9);
  const text = scale > 0 ? `${whole}.${fraction}` : whole;
  return negative && /[1-9]/.test(text) ? `-${text}` : text;
}
