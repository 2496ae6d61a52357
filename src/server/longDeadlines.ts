import type * as grpc from '@grpc/grpc-js';

import { MAX_TIMER_MS } from './longTimeout.js';

/** grpc-timeout units in milliseconds (the gRPC over HTTP/2 spec). */
const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };
/** The longest timeout grpc-js's server can arm: 2147483 seconds (24.8 days), written as a header value. */
export const CLAMPED_TIMEOUT = `${Math.floor(MAX_TIMER_MS / 1000)}S`;

/**
 * The grpc-timeout header value the server should act on: unchanged unless it asks for more than
 * Node can time, then clamped to 24.8 days. grpc-js's server converts the header with `| 0` and arms
 * one setTimeout, so a 40-day deadline overflowed and ended the call at once.
 */
export function clampTimeoutHeader(value: string): string {
  const match = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!match) return value; // grpc-js answers a malformed header with INTERNAL itself
  return Number(match[1]) * UNIT_MS[match[2]] > MAX_TIMER_MS ? CLAMPED_TIMEOUT : value;
}

/**
 * Clamps every incoming call's grpc-timeout before grpc-js reads it. There is no public hook ahead
 * of grpc-js's own header handling, so this prepends a 'stream' listener to the HTTP/2 servers it
 * bound (its `http2Servers` map); if a grpc-js upgrade moves them, start-up fails here, by name,
 * rather than long deadlines silently breaking again.
 */
export function clampLongDeadlines(server: grpc.Server): void {
  const servers = (server as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  if (!(servers instanceof Map) || servers.size === 0) {
    throw new Error('grpc-js no longer exposes its HTTP/2 servers (Server.http2Servers): src/server/longDeadlines.ts needs updating');
  }
  for (const http2Server of servers.keys()) {
    (http2Server as { prependListener(event: 'stream', listener: (stream: unknown, headers: Record<string, string | string[] | undefined>) => void): void })
      .prependListener('stream', (_stream, headers) => {
        const timeout = headers['grpc-timeout'];
        if (typeof timeout === 'string') headers['grpc-timeout'] = clampTimeoutHeader(timeout);
      });
  }
}
