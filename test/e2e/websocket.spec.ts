import 'reflect-metadata';
import {
  MessageBody,
  SubscribeMessage,
  WebSocketGateway,
  type OnGatewayConnection,
} from '@nestjs/websockets';
import { WsAdapter } from '@nestjs/platform-ws';
import { map } from 'rxjs';
import WebSocket from 'ws';
import { BackpressureModule, Limited } from '../../src';
import { moduleOf, PLATFORMS, startApp, type Platform, type Running } from './support/apps';
import { Probe } from './support/probe';
import { until } from '../support/wait';

interface Message {
  event: string;
  data: unknown;
}

@WebSocketGateway({ path: '/ws' })
class WorkGateway implements OnGatewayConnection {
  constructor(private readonly probe: Probe) {}

  /**
   * NestJS 11's exception filter `emit`s 'exception' on the server-side socket, which a `ws`
   * client never sees (NestJS 12 sends it). Forward it, so the suite checks the same on both.
   */
  handleConnection(client: WebSocket) {
    client.on('exception', (data: unknown) =>
      client.send(JSON.stringify({ event: 'exception', data })),
    );
  }

  @SubscribeMessage('work')
  @Limited('ws')
  async work(@MessageBody() id: string) {
    await this.probe.enter(id);
    return { event: 'done', data: id };
  }

  @SubscribeMessage('ticks')
  @Limited('ws')
  ticks() {
    return this.probe.events.pipe(map((data) => ({ event: 'tick', data })));
  }
}

/** A `ws` client that keeps every message it receives. */
async function connect(url: string): Promise<{ socket: WebSocket; received: Message[] }> {
  const socket = new WebSocket(url.replace('http', 'ws') + '/ws');
  const received: Message[] = [];
  socket.on('message', (raw) => received.push(JSON.parse(String(raw)) as Message));
  await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
  return { socket, received };
}

describe.each(PLATFORMS)(
  'a @SubscribeMessage handler under @Limited on %s',
  (platform: Platform) => {
    let probe: Probe;
    let running: Running;

    beforeEach(async () => {
      probe = new Probe();
      const module = moduleOf({
        imports: [BackpressureModule.forRoot({ gauges: { ws: { limit: 1 } } })],
        providers: [WorkGateway, { provide: Probe, useValue: probe }],
      });
      running = await startApp(platform, module, (app) =>
        app.useWebSocketAdapter(new WsAdapter(app)),
      );
    });

    afterEach(async () => {
      probe.openAll();
      await running.close();
    });

    it("emits an 'exception' event with statusCode 429 when full, and keeps serving", async () => {
      const { socket, received } = await connect(running.url);
      socket.send(JSON.stringify({ event: 'work', data: 'a' }));
      await until(() => probe.entered.length === 1, 'the handler runs');

      socket.send(JSON.stringify({ event: 'work', data: 'b' }));
      await until(() => received.length === 1, 'the refusal arrives');
      expect(received[0]).toEqual({
        event: 'exception',
        data: {
          status: 'error',
          statusCode: 429,
          error: 'Too Many Requests',
          message: 'Too many requests',
          retryAfterSeconds: 1,
          reason: 'full',
        },
      });
      expect(probe.entered).toEqual(['a']);

      probe.pass('a');
      await until(() => received.length === 2, 'the first answer arrives');
      expect(received[1]).toEqual({ event: 'done', data: 'a' });
      await until(() => running.gauge('ws').inFlight === 0, 'the slot is free');

      socket.send(JSON.stringify({ event: 'work', data: 'c' }));
      await until(() => probe.entered.length === 2, 'the next handler runs');
      probe.pass('c');
      await until(() => received.length === 3, 'the next answer arrives');
      expect(received[2]).toEqual({ event: 'done', data: 'c' });
      socket.close();
    });

    it('a streaming handler holds its slot while it streams, and frees it when the client leaves', async () => {
      const { socket, received } = await connect(running.url);
      socket.send(JSON.stringify({ event: 'ticks' }));
      await until(() => probe.events.observed, 'the stream is subscribed');
      probe.events.next('one');
      await until(() => received.length === 1, 'the first tick arrives');
      expect(received[0]).toEqual({ event: 'tick', data: 'one' });
      expect(running.gauge('ws').inFlight).toBe(1);

      socket.close();
      await until(() => running.gauge('ws').inFlight === 0, 'the slot is free');
      expect(probe.events.observed).toBe(false);
    });
  },
);
