/**
 * JSON text of response bodies. Row values may be bigints (int8 columns), which JSON.stringify
 * refuses: they are written as numbers when exact, else as strings.
 */

export function stringifyJson(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    // The replacer slows every value down, so it is used only when a bigint is there.
    if (!(error instanceof TypeError)) throw error;
    return JSON.stringify(value, replaceBigint);
  }
}

function replaceBigint(_key: string, value: unknown): unknown {
  if (typeof value !== 'bigint') return value;
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
}

/**
 * Where JSON.parse failed in `text` (V8's messages name it only for some errors): the offset of
 * the first character that cannot continue a JSON document, with its 1-based line and column.
 */
export function jsonErrorPosition(text: string): { position: number; line: number; column: number } {
  let index = 0;
  const fail = (): never => {
    throw index;
  };
  const space = (): void => {
    while (index < text.length && ' \t\n\r'.includes(text[index])) index++;
  };
  const literal = (word: string): void => {
    for (const character of word) if (text[index++] !== character) (index--, fail());
  };
  const string = (): void => {
    index++;
    for (;;) {
      const character = text[index];
      if (character === undefined || character < ' ') fail();
      index++;
      if (character === '"') return;
      if (character === '\\') {
        if (text[index] === 'u') {
          index++;
          for (let digit = 0; digit < 4; digit++, index++) if (!/[0-9a-fA-F]/.test(text[index] ?? '')) fail();
        } else if ('"\\/bfnrt'.includes(text[index] ?? '!')) index++;
        else fail();
      }
    }
  };
  const number = (): void => {
    const match = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = index;
    if (!match.test(text)) fail();
    index = match.lastIndex;
  };
  const value = (): void => {
    space();
    const character = text[index];
    if (character === '{' || character === '[') {
      const close = character === '{' ? '}' : ']';
      index++;
      space();
      if (text[index] === close) return void index++;
      for (;;) {
        if (close === '}') {
          space();
          if (text[index] !== '"') fail();
          string();
          space();
          if (text[index] !== ':') fail();
          index++;
        }
        value();
        space();
        if (text[index] === ',') index++;
        else if (text[index] === close) return void index++;
        else fail();
      }
    }
    if (character === '"') return string();
    if (character === 't') return literal('true');
    if (character === 'f') return literal('false');
    if (character === 'n') return literal('null');
    number();
  };
  let position = text.length;
  try {
    value();
    space();
    if (index < text.length) fail();
  } catch (failed) {
    if (typeof failed !== 'number') throw failed;
    position = failed;
  }
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  return { position, line, column: position - before.lastIndexOf('\n') };
}
