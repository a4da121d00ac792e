/**
 * Secrets in definitions and options: written as `${env:NAME}` or `${file:PATH}`, resolved when
 * used, and never printed — URLs are shown with their password as `***`.
 */

import fs from 'node:fs';
import { DefiniteError } from './errors.ts';

/** A URL with its password hidden. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/@]*):[^@/]*@/i, '$1:***@');
}

/**
 * `text` with every `${env:NAME}` and `${file:PATH}` replaced by the variable's value or the
 * file's contents (trimmed), passed through `encode` (e.g. encodeURIComponent inside a URL).
 * `what` names the owner in errors ("source shop", "--token").
 */
export function resolveSecrets(text: string, what: string, encode: (secret: string) => string = (secret) => secret): string {
  return text.replace(/\$\{(env|file):([^}]+)\}/g, (_match, kind: string, name: string) => {
    if (kind === 'env') {
      const value = process.env[name];
      if (value === undefined || value === '') throw new DefiniteError('secret_missing', `${what}: environment variable ${name} is not set`, `export ${name}=… before starting`);
      return encode(value);
    }
    try {
      return encode(fs.readFileSync(name, 'utf8').trim());
    } catch (error) {
      throw new DefiniteError('secret_missing', `${what}: cannot read the secret file ${name} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  });
}
