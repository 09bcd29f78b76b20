import { createServer, type Server } from 'node:net';

function listenEphemeral(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/**
 * Finds `count` distinct free TCP ports on 127.0.0.1 by binding port 0 and
 * reading what the kernel picked. All sockets are held until every port is
 * known, so the ports differ from one another.
 */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) servers.push(await listenEphemeral());
    return servers.map((s) => {
      const addr = s.address();
      if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
      return addr.port;
    });
  } finally {
    await Promise.all(servers.map(close));
  }
}

/** One free TCP port on 127.0.0.1. */
export async function freeLoopbackPort(): Promise<number> {
  const [port] = await freeLoopbackPorts(1);
  if (port === undefined) throw new Error('no free port');
  return port;
}
