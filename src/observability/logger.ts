import { pino, type Logger } from 'pino';

export type { Logger };

/** Fields that hold secrets, wherever Concord might put them in a log object. */
const SECRET_FIELDS = [
  'client_secret', 'clientSecret', 'password', 'code_verifier', 'codeVerifier', 'access_token', 'refresh_token',
  'id_token', 'id_token_hint', 'token', 'assertion', 'client_assertion', 'state', 'nonce', 'sealedPrivateJwk',
];
/** The objects that carry request or upstream data into log lines. */
const CARRIERS = ['err', 'error', 'body', 'params', 'upstream', 'pending', 'record'];

/**
 * Paths pino blanks in every line. Belt and braces: Concord never logs these on purpose, but an
 * error object or a request line must not carry a token, secret or cookie by accident. The paths
 * are explicit, not wildcards: pino compiles explicit paths into cheap code, while a wildcard walks
 * every object of every line (a measurable share of a token request). `code` is not among them: it
 * is the stable code of Concord's errors, which operators need; authorization codes only travel in
 * URLs, and URLs are logged through safeUrl.
 */
const REDACT = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS,
  ...CARRIERS.flatMap((carrier) => SECRET_FIELDS.map((field) => `${carrier}.${field}`)),
];

/** Lines are written once this many bytes wait (or LOG_FLUSH_MS after the first of them). */
export const LOG_BUFFER_BYTES = 4096;
/** The longest a line waits in the buffer before it is written: ms. */
export const LOG_FLUSH_MS = 100;

/**
 * Where log lines go as deployed: file descriptor `dest` (1, stdout) or a file path, written
 * asynchronously and in batches: lines wait until LOG_BUFFER_BYTES are buffered (sonic-boom's
 * minLength), and at most LOG_FLUSH_MS after the first line that found the buffer empty. A busy
 * instance makes one write for a dozen request lines instead of one each: each write, even an
 * asynchronous one, costs the event loop a request to libuv's thread pool, about 5 µs per line at the
 * token endpoint's rate. pino ends the stream with a synchronous flush when the process exits, so no
 * line is lost then.
 *
 * The flush timer runs only while lines wait: sonic-boom's own `periodicFlush` fires every
 * LOG_FLUSH_MS for ever and writes even an empty buffer (a thread-pool round trip, ten a second), so
 * an idle instance woke up ten times a second to write nothing.
 *
 * The batch is kept as the lines' bytes (sonic-boom's contentMode 'buffer'), each line encoded once
 * as pino hands it over: kept as text, sonic-boom appended each line to one string and measured its
 * UTF-8 length on every line (a copy of the whole batch so far), and copied the batch to bytes again
 * after each write: kilobytes of garbage per line, more than the rest of Concord's own per-request
 * middleware allocates.
 */
export function logDestination(dest: number | string = 1): pino.DestinationStream {
  const stream = pino.destination({ dest, sync: false, minLength: LOG_BUFFER_BYTES, contentMode: 'buffer' });
  // pino writes each line as a string; in buffer mode sonic-boom takes bytes.
  const write = stream.write.bind(stream) as unknown as (bytes: Buffer) => boolean;
  /** Bytes handed to the stream and not written yet (its 'write' event gives what each write took). */
  let waiting = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    timer = undefined;
    // A write under way (or the file still opening) ends with a 'write' (or 'ready') event, which arms the timer again if lines still wait.
    if (!(stream as { destroyed?: boolean }).destroyed) stream.flush();
  };
  const arm = () => {
    if (timer !== undefined || waiting <= 0) return;
    timer = setTimeout(flush, LOG_FLUSH_MS);
    timer.unref();
  };
  stream.on('write', (bytes: number) => {
    waiting -= bytes;
    arm();
  });
  stream.on('ready', arm);
  stream.write = (line: string): boolean => {
    const bytes = Buffer.from(line, 'utf8');
    waiting += bytes.length;
    const accepted = write(bytes);
    arm();
    return accepted;
  };
  return stream;
}

let timeSecond = Number.NaN;
let timePrefix = '';

/**
 * pino's `time` field as pino.stdTimeFunctions.isoTime writes it (`,"time":"2026-11-30T09:08:12.345Z"`,
 * UTC, milliseconds), with the part up to the second formatted once a second instead of by a Date
 * per line: every request writes a line, and Date#toISOString was a measurable share of one.
 */
export function isoTime(now: number = Date.now()): string {
  const ms = now % 1000;
  const second = now - ms;
  if (second !== timeSecond) {
    timeSecond = second;
    timePrefix = `,"time":"${new Date(second).toISOString().slice(0, 20)}`;
  }
  return `${timePrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
}

/** The JSON logger: to `destination`, or as deployed (logDestination: stdout, asynchronous, batched); `flush()` before exit. */
export function createLogger(options: { level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: options.level,
      base: { service: 'concord' },
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: () => isoTime(),
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? logDestination(),
  );
}

/** Query parameters whose values never reach a log line. */
const SECRET_PARAMS = /^(code|state|nonce|token|access_token|refresh_token|id_token|id_token_hint|client_secret|code_verifier|login_hint|logout_hint|assertion|client_assertion|request|session_state|password|email)$/i;

/** The request's path with secret query values replaced, safe to log. */
export function safeUrl(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const key of [...params.keys()]) if (SECRET_PARAMS.test(key)) params.set(key, '[redacted]');
  return `${url.slice(0, q)}?${params.toString()}`;
}
