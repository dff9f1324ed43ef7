import type net from 'node:net';

/*
 * A bench-only tracer of one process's Redis traffic, at the socket: each command Concord sends with
 * its size in bytes (RESP, as Redis's total_net_input_bytes counts it) and the size of its reply (as
 * total_net_output_bytes counts it), paired in order on each connection (Redis answers a connection's
 * commands in the order they came; pub/sub messages, which answer nothing, are counted apart).
 * bench/servers/child.ts installs it with BENCH_BYTES_DUMP; bench/login-bytes.ts reads the dump.
 */

/** One command as it went to Redis and came back: its words (the first two, for key families), bytes each way. */
export interface TracedCommand {
  name: string;
  /** The key it names (the first key of EVAL/EVALSHA), or '' when none. */
  key: string;
  sent: number;
  received: number;
}

interface SocketState {
  /** Bytes of requests not yet parsed (a command split across writes). */
  out: Buffer;
  /** Bytes of replies not yet parsed. */
  in: Buffer;
  /** Commands sent whose reply has not come yet, oldest first. */
  waiting: Array<{ name: string; key: string; sent: number }>;
}

/** The end offset of the RESP value starting at `at`, or -1 when `buf` does not hold all of it yet. */
function replyEnd(buf: Buffer, at: number): number {
  if (at >= buf.length) return -1;
  const eol = buf.indexOf('\r\n', at);
  if (eol < 0) return -1;
  const type = buf[at];
  const n = Number(buf.toString('latin1', at + 1, eol));
  switch (type) {
    case 0x2b: // +
    case 0x2d: // -
    case 0x3a: // :
      return eol + 2;
    case 0x24: {
      // $
      if (n < 0) return eol + 2;
      const end = eol + 2 + n + 2;
      return end <= buf.length ? end : -1;
    }
    case 0x2a: {
      // *
      let next = eol + 2;
      for (let i = 0; i < n; i++) {
        next = replyEnd(buf, next);
        if (next < 0) return -1;
      }
      return next;
    }
    default:
      throw new Error(`unexpected RESP type ${String.fromCharCode(type ?? 0)}`);
  }
}

/** The first complete command (an array of bulk strings) at the start of `buf`: its words and length, or undefined. */
function requestAt(buf: Buffer): { words: string[]; length: number } | undefined {
  const end = replyEnd(buf, 0);
  if (end < 0) return undefined;
  const words: string[] = [];
  let at = buf.indexOf('\r\n') + 2;
  while (at < end) {
    const eol = buf.indexOf('\r\n', at);
    const len = Number(buf.toString('latin1', at + 1, eol));
    // Only the first four words are kept (the command, its key, EVALSHA's numkeys and key).
    if (words.length < 4) words.push(buf.toString('utf8', eol + 2, eol + 2 + Math.min(len, 300)));
    else words.push('');
    at = eol + 2 + len + 2;
  }
  return { words, length: end };
}

function keyOf(words: string[]): string {
  const name = (words[0] ?? '').toLowerCase();
  if (name === 'evalsha' || name === 'eval') return Number(words[2]) > 0 ? (words[3] ?? '') : '';
  if (/^(multi|exec|discard|ping|info|quit|client|hello|auth|select|script|subscribe|unsubscribe|psubscribe|publish|cluster|readonly)$/.test(name)) return name === 'publish' ? (words[1] ?? '') : '';
  return words[1] ?? '';
}

/**
 * Counts what `socket` sends (call with each chunk written) and, once attached, what it receives;
 * `done` is called with each command once its reply is in.
 */
export class RespTracer {
  readonly #sockets = new WeakMap<net.Socket, SocketState>();
  readonly #done: (command: TracedCommand) => void;

  constructor(done: (command: TracedCommand) => void) {
    this.#done = done;
  }

  written(socket: net.Socket, chunk: unknown): void {
    let state = this.#sockets.get(socket);
    if (!state) {
      const fresh: SocketState = { out: Buffer.alloc(0), in: Buffer.alloc(0), waiting: [] };
      this.#sockets.set(socket, (state = fresh));
      socket.on('data', (data: Buffer) => this.#received(fresh, data));
    }
    const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    state.out = state.out.length ? Buffer.concat([state.out, bytes]) : bytes;
    for (let request = requestAt(state.out); request; request = requestAt(state.out)) {
      state.waiting.push({ name: (request.words[0] ?? '').toLowerCase(), key: keyOf(request.words), sent: request.length });
      state.out = state.out.subarray(request.length);
    }
  }

  #received(state: SocketState, data: Buffer): void {
    state.in = state.in.length ? Buffer.concat([state.in, data]) : data;
    for (let end = replyEnd(state.in, 0); end > 0; end = replyEnd(state.in, 0)) {
      const command = state.waiting.shift();
      this.#done(command ? { ...command, received: end } : { name: '(pushed)', key: '', sent: 0, received: end });
      state.in = state.in.subarray(end);
    }
  }
}
