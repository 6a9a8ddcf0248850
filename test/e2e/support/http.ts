import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

/** A complete HTTP answer. */
export interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request in flight: its answer, what of its body arrived so far, and a way to hang up. */
export interface Call {
  /** The whole answer; rejects if the connection drops first (e.g. after `abort()`). */
  readonly reply: Promise<Reply>;
  /** Resolves with the status once the response head arrives (before the body ends). */
  readonly status: Promise<number>;
  /** The body received so far, for streamed responses. */
  received(): string;
  /** Drops the connection, as a client that goes away does. */
  abort(): void;
}

/**
 * Sends a request on a connection of its own (no keep-alive pool), so dropping it is unambiguous
 * and one held request never delays another.
 */
export function send(
  baseUrl: string,
  path: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Call {
  let text = '';
  let onStatus!: (status: number) => void;
  const status = new Promise<number>((resolve) => (onStatus = resolve));
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const req = httpRequest(new URL(path, baseUrl), {
    method: options.method ?? (payload === undefined ? 'GET' : 'POST'),
    agent: false,
    headers: {
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
  });
  const reply = new Promise<Reply>((resolve, reject) => {
    req.on('error', reject);
    req.on('response', (res) => {
      onStatus(res.statusCode ?? 0);
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('error', reject);
      res.on('aborted', () => reject(new Error('response aborted')));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
  });
  reply.catch(() => undefined); // an aborted call is awaited only when the test cares
  req.end(payload);
  return { reply, status, received: () => text, abort: () => req.destroy() };
}

/** Sends a request and waits for the whole answer. */
export function get(baseUrl: string, path: string): Promise<Reply> {
  return send(baseUrl, path).reply;
}

/** The body of a Nest error answer, parsed. */
export function json(reply: Reply): unknown {
  return JSON.parse(reply.body);
}
