/**
 * Output helpers shared by the benchmarks: numbers for tables and JSON, and the table itself
 * (first column left-aligned, the rest right-aligned, a rule under the header).
 */

export function formatNumber(value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return '';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function round(value: number | undefined, digits: number): number | undefined {
  if (value === undefined || Number.isNaN(value)) return undefined;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

export function printTable(headers: string[], lines: string[][]): void {
  const widths = headers.map((title, i) => Math.max(title.length, ...lines.map((line) => (line[i] ?? '').length)));
  const render = (line: string[]) => line.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  process.stdout.write(`${[render(headers), widths.map((width) => '─'.repeat(width)).join('  '), ...lines.map(render)].join('\n')}\n`);
}

/** A progress line on stderr (stdout carries the tables and the JSON summary). */
export function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
