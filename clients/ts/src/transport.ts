/**
 * What carries bundles between client and server: a WebSocket's binary
 * frames (docs/PROTOCOL.md section 3.3). An interface, so a game can wrap
 * it (a test drops frames to play over a lossy link) or bring its own
 * socket implementation.
 *
 * @module
 */

/** A bidirectional stream of binary frames. */
export interface Transport {
  /** Sends one frame (one bundle). */
  send(frame: Uint8Array): void;
  /** Closes the transport; {@link TransportHandlers.close} follows. */
  close(): void;
  /** Starts delivering to `handlers`; called once, by the client. */
  attach(handlers: TransportHandlers): void;
}

/** What a transport tells its client. */
export interface TransportHandlers {
  frame(frame: Uint8Array): void;
  /** The transport closed; `reason` says why, for people. */
  close(reason: string): void;
}

/**
 * A WebSocket transport over the platform's `WebSocket` (browsers; Node 22,
 * or Node 20.10+ with `--experimental-websocket`). Resolves once open.
 */
export function openWebSocket(url: string): Promise<Transport> {
  const WebSocketClass = globalThis.WebSocket;
  if (WebSocketClass === undefined) {
    return Promise.reject(new Error("no WebSocket in this runtime (Node 20 needs --experimental-websocket)"));
  }
  return new Promise((resolve, reject) => {
    const socket = new WebSocketClass(url);
    socket.binaryType = "arraybuffer";
    let handlers: TransportHandlers | undefined;
    const early: Uint8Array[] = [];
    let closed: string | undefined;
    socket.onopen = () => {
      resolve({
        send: (frame) => {
          if (socket.readyState === WebSocketClass.OPEN) socket.send(frame);
        },
        close: () => socket.close(),
        attach: (next) => {
          handlers = next;
          for (const frame of early.splice(0)) next.frame(frame);
          if (closed !== undefined) next.close(closed);
        },
      });
    };
    socket.onmessage = (event: MessageEvent) => {
      // Text frames carry nothing for a client.
      if (!(event.data instanceof ArrayBuffer)) return;
      const frame = new Uint8Array(event.data);
      if (handlers === undefined) early.push(frame);
      else handlers.frame(frame);
    };
    socket.onerror = () => reject(new Error(`WebSocket to ${url.replace(/ticket=[^&]*/, "ticket=...")} failed`));
    socket.onclose = (event: CloseEvent) => {
      const reason = `WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`;
      if (handlers === undefined) closed = reason;
      else handlers.close(reason);
    };
  });
}
