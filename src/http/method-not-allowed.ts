import type { FastifyInstance } from 'fastify';
import { sendGraphError } from './graph-error.js';

const allMethods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Answers 405 with an `Allow` header for every method a path does not serve. */
export function methodNotAllowed(
  app: FastifyInstance,
  url: string,
  allowed: readonly string[],
  clock: () => Date,
): void {
  // HEAD is served wherever GET is (fastify adds it), so it is allowed there.
  const served = new Set([...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])]);
  const others = allMethods.filter((m) => !served.has(m));
  if (others.length === 0) return;
  app.route({
    method: [...others],
    url,
    handler: (request, reply) => {
      reply.header('allow', [...served].join(', '));
      return sendGraphError(
        request,
        reply,
        405,
        'MethodNotAllowed',
        `The HTTP method '${request.method}' is not allowed on this resource.`,
        clock(),
      );
    },
  });
}
