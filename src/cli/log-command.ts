/**
 * `sluice log append | read | topics`: the log from the shell.
 *
 * append: NDJSON on stdin, one record per line (the line's JSON text is the value; `--key FIELD`
 * takes the key from a field and partitions by it). Lines are appended in batches as they arrive;
 * for each record, once durable, `{"partition":P,"offset":O}` is printed — in input order, so line
 * N of the output answers line N of the accepted input. A malformed line is reported on stderr
 * with its line number and skipped; the rest are appended; the exit code is then 1.
 */
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { DefiniteError } from '../core/index.ts';
import { FileLog, partitionForKey, type AppendRecord, type LogRecord } from '../log/index.ts';
import { UsageError, dataOption, parseCommand, persistMode, wholeNumber } from './arguments.ts';

export function logFolder(data: string): string {
  return path.join(data, 'log');
}

export async function logCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'append':
      return appendCommand(rest);
    case 'read':
      return readCommand(rest);
    case 'topics':
      return topicsCommand(rest);
    default:
      throw new UsageError(sub ? `unknown log command "${sub}"` : 'log needs a command: append, read or topics');
  }
}

function onlyTopic(positionals: string[], command: string): string {
  if (positionals.length !== 1) throw new UsageError(`log ${command} takes one topic name, not ${positionals.length ? positionals.join(' ') : 'none'}`);
  return positionals[0];
}

/** Writes to stdout, waiting when the pipe is full; false once the reader has gone (EPIPE). */
let outputClosed = false;
process.stdout.on('error', () => {
  outputClosed = true; // EPIPE: whoever read our output has gone; callers stop writing
});

function writeOut(text: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (outputClosed || process.stdout.destroyed) return resolve(false);
    const flushed = process.stdout.write(text, (error) => {
      if (error) resolve(false);
    });
    if (flushed) resolve(true);
    else process.stdout.once('drain', () => resolve(true));
  });
}

/**
 * Lines of standard input, split on "\n" only: readline would also split on U+2028 and U+2029,
 * which JSON allows unescaped inside strings.
 */
class NdjsonLines {
  readonly #input: NodeJS.ReadStream;
  readonly #lineListeners: Array<(line: string) => void> = [];
  readonly #closeListeners: Array<() => void> = [];
  #closed = false;

  constructor(input: NodeJS.ReadStream) {
    this.#input = input;
    const decoder = new StringDecoder('utf8');
    let rest = '';
    input.on('data', (chunk: Buffer) => {
      if (this.#closed) return;
      const lines = (rest + decoder.write(chunk)).split('\n');
      rest = lines.pop()!;
      for (const line of lines) this.#emit(line);
    });
    const end = () => {
      if (this.#closed) return;
      rest += decoder.end();
      if (rest !== '') this.#emit(rest);
      this.close();
    };
    input.once('end', end);
    input.once('error', end);
  }

  #emit(line: string): void {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    for (const listener of this.#lineListeners) listener(text);
  }

  onLine(listener: (line: string) => void): void {
    this.#lineListeners.push(listener);
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  pause(): void {
    this.#input.pause();
  }

  resume(): void {
    this.#input.resume();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#input.pause();
    for (const listener of this.#closeListeners) listener();
  }
}

const batchLinesMax = 5000;
const batchesInFlightMax = 16;

interface Line {
  text: string;
  key: string | undefined;
}

async function appendCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    ...dataOption,
    key: { type: 'string' },
    partitions: { type: 'string' },
    persist: { type: 'string' },
  });
  const topic = onlyTopic(positionals, 'append');
  const persist = persistMode(values.persist);
  const log = await FileLog.open(logFolder(values.data), { persist });
  let rejected = 0;
  let accepted = 0;
  try {
    const existing = (await log.topics()).get(topic);
    const partitions = wholeNumber('partitions', values.partitions, existing?.partitions ?? 1, 1);
    const config = await log.createTopic(topic, values.partitions === undefined ? {} : { partitions });
    const keyField = values.key;
    await log.endOffsets(topic); // opens the topic now: takes its writer locks, recovers it

    // Appends a batch (one append per partition) and returns its output lines, in input order.
    const appendBatch = async (lines: Line[]): Promise<string> => {
      const byPartition = new Map<number, AppendRecord[]>();
      const target = new Array<number>(lines.length);
      for (let i = 0; i < lines.length; i++) {
        const { key, text } = lines[i];
        const partition = key === undefined ? 0 : partitionForKey(key, config.partitions);
        target[i] = partition;
        let records = byPartition.get(partition);
        if (!records) byPartition.set(partition, (records = []));
        records.push({ key: key ?? null, value: text });
      }
      const results = await Promise.all([...byPartition].map(([partition, records]) => log.append(topic, partition, records)));
      const next = new Map<number, number>(results.map((result) => [result.partition, result.baseOffset]));
      let out = '';
      for (const partition of target) {
        const offset = next.get(partition)!;
        next.set(partition, offset + 1);
        out += `{"partition":${partition},"offset":${offset}}\n`;
      }
      return out;
    };

    // Lines that arrive together (one chunk of input) go out as one batch, so an interactive
    // writer gets each answer at once and a bulk writer gets large group commits.
    const input = new NdjsonLines(process.stdin);
    const inFlight: Array<Promise<string>> = [];
    let batch: Line[] = [];
    let scheduled = false;
    let failure: unknown;
    let inputClosed = false;
    input.onClose(() => (inputClosed = true));
    let printing = Promise.resolve();
    const print = () => {
      printing = printing.then(async () => {
        while (inFlight.length > 0) {
          const text = await inFlight[0];
          inFlight.shift();
          if (!(await writeOut(text))) throw new DefiniteError('output_closed', 'standard output closed before every position was printed');
          if (inFlight.length < batchesInFlightMax / 2 && !inputClosed) input.resume();
        }
      }).catch((error: unknown) => {
        failure ??= error;
        input.close();
      });
    };
    const send = () => {
      scheduled = false;
      if (batch.length === 0) return;
      const promise = appendBatch(batch);
      promise.catch(() => {}); // reported through `print`, in order
      inFlight.push(promise);
      batch = [];
      if (inFlight.length >= batchesInFlightMax) input.pause();
      print();
    };
    let lineNumber = 0;
    input.onLine((raw) => {
      lineNumber++;
      const text = raw.trim();
      if (text === '') return;
      let key: string | undefined;
      try {
        const value: unknown = JSON.parse(text);
        if (keyField !== undefined) {
          const field = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[keyField] : undefined;
          if (field === undefined || field === null) throw new Error(`it has no field "${keyField}" to use as the key`);
          key = typeof field === 'string' ? field : JSON.stringify(field);
        }
      } catch (error) {
        rejected++;
        const reason = error instanceof SyntaxError ? `it is not valid JSON (${error.message})` : (error as Error).message;
        process.stderr.write(`sluice: line ${lineNumber} skipped: ${reason}\n`);
        return;
      }
      accepted++;
      batch.push({ text, key });
      if (batch.length >= batchLinesMax) send();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(send);
      }
    });
    if (!inputClosed) await new Promise<void>((resolve) => input.onClose(resolve));
    send();
    await printing;
    while (inFlight.length > 0 && failure === undefined) {
      print();
      await printing;
    }
    if (failure !== undefined) throw failure;
  } finally {
    await log.close();
  }
  if (rejected > 0) {
    process.stderr.write(`sluice: appended ${accepted} records to ${topic}; skipped ${rejected} malformed line${rejected === 1 ? '' : 's'}\n`);
    return 1;
  }
  return 0;
}

function recordLine(topic: string, record: LogRecord): string {
  const key = record.key === null ? 'null' : JSON.stringify(record.key.toString());
  let value = 'null';
  if (record.value !== null) {
    const text = record.value.toString();
    try {
      JSON.parse(text);
      value = text;
    } catch {
      value = JSON.stringify(text);
    }
  }
  return `{"topic":${JSON.stringify(topic)},"partition":${record.partition},"offset":${record.offset},"timestamp":${record.timestamp},"key":${key},"value":${value}}\n`;
}

async function readCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, {
    ...dataOption,
    from: { type: 'string' },
    partition: { type: 'string' },
    follow: { type: 'boolean', default: false },
  });
  const topic = onlyTopic(positionals, 'read');
  const from = wholeNumber('from', values.from, 0);
  const log = await FileLog.open(logFolder(values.data), { readOnly: true });
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const config = (await log.topics()).get(topic);
    if (!config) throw new DefiniteError('topic_unknown', `topic ${topic} does not exist in ${path.resolve(values.data)}`, 'list the topics with `sluice log topics`');
    const partitions = values.partition === undefined ? [...Array(config.partitions).keys()] : [wholeNumber('partition', values.partition, 0)];
    const readOne = async (partition: number) => {
      if (values.follow) {
        for await (const { records } of log.follow(topic, partition, from, { signal: controller.signal })) {
          if (!(await writeOut(records.map((record) => recordLine(topic, record)).join('')))) return controller.abort();
        }
        return;
      }
      let next = from;
      for (;;) {
        const { records, nextOffset } = await log.read(topic, partition, next);
        if (records.length === 0) return;
        if (!(await writeOut(records.map((record) => recordLine(topic, record)).join('')))) return;
        next = nextOffset;
      }
    };
    if (values.follow) await Promise.all(partitions.map(readOne));
    else for (const partition of partitions) await readOne(partition);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await log.close();
  }
  return 0;
}

async function topicsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommand(argv, dataOption);
  if (positionals.length > 0) throw new UsageError('log topics takes no arguments');
  const log = await FileLog.open(logFolder(values.data), { readOnly: true });
  try {
    let out = '';
    for (const [topic, config] of await log.topics()) {
      const [startOffsets, endOffsets] = [await log.startOffsets(topic), await log.endOffsets(topic)];
      out += `${JSON.stringify({ topic, partitions: config.partitions, cleanupPolicy: config.cleanupPolicy, startOffsets, endOffsets })}\n`;
    }
    await writeOut(out);
  } finally {
    await log.close();
  }
  return 0;
}
