import { connect, type Socket } from 'node:net';

/** Requests pipelined on one HTTP/1.1 connection, and what came back on it. */
export interface Pipelined {
  /** Everything received on the connection so far. */
  received(): string;
  /** The status codes of the responses received so far, in order. */
  statuses(): number[];
  /** Closes the connection (the client goes away with its requests unanswered). */
  close(): void;
}

/**
 * Opens one connection to `baseUrl` and writes a GET for every path in a single write, without
 * waiting for any answer: HTTP/1.1 pipelining. Resolves once the requests are written.
 */
export async function pipeline(baseUrl: string, paths: readonly string[]): Promise<Pipelined> {
  const { hostname, port } = new URL(baseUrl);
  const socket: Socket = connect(Number(port), hostname);
  let text = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => (text += chunk));
  socket.on('error', () => undefined); // a reset after close() is expected
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const host = `${hostname}:${port}`;
  const requests = paths.map(
    (path) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`,
  );
  await new Promise<void>((resolve, reject) =>
    socket.write(requests.join(''), (error) => (error ? reject(error) : resolve())),
  );
  return {
    received: () => text,
    statuses: () => [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((match) => Number(match[1])),
    close: () => socket.destroy(),
  };
}
