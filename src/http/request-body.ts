import { type FastifyInstance, errorCodes as fastifyErrorCodes } from 'fastify';

/**
 * Body parsing as Graph does it: an empty body (zero bytes, whether sent with `Content-Length: 0` or
 * as a chunked stream that ends at once) means "no parameters", whatever content type it declares.
 * Graph's own clients send such requests all the time: the PowerShell Intune samples put
 * `Content-Type: application/json` on every call, `Invoke-MgGraphRequest` forces it on POST/PUT/PATCH,
 * graph-js `.post()` sends it with `content-length: 0`, and `Invoke-RestMethod -Method Post` without a
 * body declares `application/x-www-form-urlencoded`. Such a request reaches its handler with no body.
 *
 * A body that is present keeps the strict rules: JSON (`application/json`, any parameters) is parsed
 * with fastify's own parser (prototype poisoning refused; malformed JSON is a 400 from the central
 * error handler), and any other content type is a 415.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body.toString();
    if (text.length === 0) return done(null, undefined);
    return json(request, text, done);
  });
  // Every other content type (and a chunked body without one): only the empty body is accepted.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    if (body.length === 0) return done(null, undefined);
    return done(new fastifyErrorCodes.FST_ERR_CTP_INVALID_MEDIA_TYPE(), undefined);
  });
}
