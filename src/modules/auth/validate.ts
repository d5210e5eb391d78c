import { Elysia } from "elysia";
import { errorResponses, SESSION_OR_KEY_GUARD } from "../../http/error-catalogue";
import { AUTH_PREFIX } from "../../http/routes";
import { SESSION_OR_KEY_SECURITY } from "../../http/schema";
import type { ResponseHeadersOf } from "../../http/security";
import { synchronous } from "../../http/synchronous";
import type { DirectRoutes } from "../../http/direct";
import type { ApiKeyPrincipal } from "../keys/service";
import type { SessionPrincipal } from "../sessions/service";
import type { Authenticated, RequestIdentity } from "./guard";
import { ValidateResponse } from "./model";
import { NO_STORE } from "../../http/cache";
import type { Pending } from "../../lib/pending";

type Context = { request: Request; set: { headers: Record<string, string | number | string[] | undefined> } };

/**
 * GET /validate, which app backends call on every request they serve: the principal as JSON (`ValidateResponse`).
 * It answers a whole Response (see `hand` in http/security.ts), so Elysia neither validates nor re-serialises it
 * (the response schema's date-time checks alone were a third of the route's time, profiled), and the answer of a
 * principal is built once: principals are cached objects (1 s for sessions, see SessionService.principal), and
 * the answer is remembered with them, for sessions with the `exp` of the token it was built for. It identifies in
 * the handler rather than through the guard's macro, and app.ts mounts it before the body parser: a route with
 * any hook that may wait is composed `async` by Elysia. Its GET is also served by Bun's router directly
 * (http/direct.ts).
 */
export function validateRoutes(identity: RequestIdentity, headers: ResponseHeadersOf, direct: DirectRoutes) {
  return new Elysia({ prefix: AUTH_PREFIX, tags: ["auth"] }).get("/validate", validateHandler(identity, headers, direct), {
    response: { 200: ValidateResponse, ...errorResponses(SESSION_OR_KEY_GUARD) },
    detail: { summary: "For app backends: who does this token or API key belong to?", security: SESSION_OR_KEY_SECURITY },
  });
}

/** The path Bun's router also serves directly, outside header mode (http/direct.ts). */
const VALIDATE_PATH = `${AUTH_PREFIX}/validate`;

function validateHandler(identity: RequestIdentity, headers: ResponseHeadersOf, direct: DirectRoutes) {
  const answerHeaders = headers.headersWith({ "content-type": "application/json;charset=utf-8", ...NO_STORE });
  // A principal's answer: its JSON, and a Response of it with the usual headers that is cloned for each request
  // (http/security.ts `prebuilt`) and never sent itself.
  type Answer = { body: string; template: Response };
  const answerOf = (body: string): Answer => ({ body, template: new Response(body, { headers: answerHeaders.shared }) });
  const sessionAnswers = new WeakMap<SessionPrincipal, { tokenExp: number; answer: Answer }>();
  const keyAnswers = new WeakMap<ApiKeyPrincipal, Answer>();

  function known(identity: Authenticated): Answer {
    if (identity.kind === "api_key") {
      const { principal } = identity;
      let answer = keyAnswers.get(principal);
      if (answer === undefined) {
        answer = answerOf(JSON.stringify({ ...who(principal), key_id: principal.keyId, scopes: principal.scopes, auth: "api_key" }));
        keyAnswers.set(principal, answer);
      }
      return answer;
    }
    const { principal, tokenExp } = identity;
    const cached = sessionAnswers.get(principal);
    if (cached !== undefined && cached.tokenExp === tokenExp) return cached.answer;
    const answer = answerOf(
      JSON.stringify({
        ...who(principal),
        session_id: principal.sessionId,
        expires_at: new Date(tokenExp * 1000).toISOString(),
        session_expires_at: new Date(principal.sessionExpiresAt).toISOString(),
      }),
    );
    sessionAnswers.set(principal, { tokenExp, answer });
    return answer;
  }

  if (identity.slides)
    // Header mode: each answer carries a new access token, signed asynchronously.
    return async ({ request, set }: Context) => {
      const who = await identity.identify(request, true);
      const slid: Record<string, string> = {};
      await identity.slide(who, slid);
      return headers.hand(set, new Response(known(who).body, { headers: answerHeaders.with(request, slid) }));
    };
  // At once on SQLite (db/atomic.ts's `run`) and on a cache hit; PostgreSQL answers a cache miss later.
  const respond = (request: Request, who: Authenticated): Response => {
    const { body, template } = known(who);
    return answerHeaders.prebuilt(request, template, body);
  };
  const answer = (request: Request): Pending<Response> => {
    const who = identity.identify(request, true);
    return who instanceof Promise ? who.then((found) => respond(request, found)) : respond(request, who);
  };
  direct.get(VALIDATE_PATH, answer);
  if (identity.waits) return async ({ request, set }: Context) => headers.hand(set, await answer(request));
  return synchronous(({ request, set }: Context) => headers.hand(set, answer(request) as Response));
}

const who = (principal: SessionPrincipal | ApiKeyPrincipal) => ({
  user_id: principal.userId,
  username: principal.username,
  email: principal.email,
  roles: principal.roles,
  metadata: principal.metadata,
});
