import { Elysia } from "elysia";
import { commaList } from "../../lib/lists";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import type { AuditLog } from "../audit/service";
import type { ClientView, OidcClients } from "../oidc/clients";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { SignedInNav } from "./account";
import { flashOutcome, problemOf, type SignedInForms } from "./signed-in-forms";
import { adminGate } from "./admin-routes";
import { DISCOVERY_PATH } from "../oidc/discovery";
import { messageFor, type Flash } from "./flash";
import { Alert, Csrf, Layout, RowAction } from "./layout";
import { Cut, DataTable } from "./table";
import { field, htmlPage, seeOther, type PageSet } from "./respond";

/** Paths of the applications page's forms (their bodies are HTML forms). */
export const APPLICATION_FORM_PATHS = ["/admin/applications", "/admin/applications/delete", "/admin/applications/secret"] as const;

interface ApplicationsView {
  appName: string;
  username: string;
  clients: ClientView[];
  csrf: (form: string) => string;
  /** What an application's settings ask for: the issuer, and the discovery document that describes the rest. */
  issuer: string;
  flash?: Flash;
}

const lines = (raw: string | undefined) =>
  (raw ?? "")
    .split(/\s+/)
    .map((item) => item.trim())
    .filter(Boolean);

/** A value to copy into another program's settings: a read-only field (select it, copy it; no script needed). */
function CopyField({ id, label, value }: { id: string; label: string; value: string }) {
  return (
    <>
      <label for={id} safe>
        {label}
      </label>
      <input id={id} value={value} readonly />
    </>
  );
}

function ApplicationsPage(view: ApplicationsView) {
  const said = messageFor(view.flash, ["application-create", "application-secret", "application-delete"]);
  return (
    <Layout appName={view.appName} title="Applications" nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} current="/admin/applications" />}>
      <section id="clients" aria-labelledby="clients-title">
        <h1 id="clients-title">Applications</h1>
        <p safe>{`Apps that sign people in with OpenID Connect ("Sign in with ${view.appName}"). Give them these:`}</p>
        <CopyField id="issuer" label="Issuer URL" value={view.issuer} />
        <CopyField id="discovery" label="Discovery URL" value={`${view.issuer}${DISCOVERY_PATH}`} />
        <h2>Registered</h2>
        {said ? <Alert message={said.text} kind={said.kind} /> : ""}
        {said?.newKey ? (
          <div class="message notice">
            <p safe>{`Client secret of ${said.newKey.name}: copy it into the application now. It is stored hashed and shown only this once.`}</p>
            <p class="secret" id="client-secret" safe>
              {said.newKey.secret}
            </p>
          </div>
        ) : (
          ""
        )}
        <DataTable
          label="Applications"
          columns={[{ label: "Client ID" }, { label: "Type" }, { label: "Redirect URIs" }, { label: "Who may use it" }, { label: "", kind: "end" }]}
          rows={view.clients}
          empty="No application is registered yet."
          cells={(client) => [
            <Cut text={client.client_id} />,
            <span safe>{`${client.public ? "public" : "confidential"}${client.trusted ? ", trusted" : ""}${client.require === "passkey" ? ", passkey required" : ""}`}</span>,
            <Cut text={client.redirect_uris.join(" ")} />,
            <Cut text={[...client.allowed_roles.map((role) => `role ${role}`), ...client.allowed_users.map((id) => `user ${id}`)].join(", ") || "everyone"} />,
            <span class="actions">
              {client.public ? (
                ""
              ) : (
                <RowAction action="/admin/applications/secret" csrf={view.csrf("application-secret")} fields={{ client_id: client.client_id }} label="New secret" kind="secondary" />
              )}
              <a class="button danger" href={`/admin/applications/delete?client_id=${encodeURIComponent(client.client_id)}`}>
                Delete…
              </a>
            </span>,
          ]}
        />
      </section>
      <section id="register" aria-labelledby="register-title">
        <h2 id="register-title">Register an application</h2>
        <form method="post" action="/admin/applications" class="stack">
          <Csrf token={view.csrf("application-create")} />
          <label for="client_id">Client ID</label>
          <input id="client_id" name="client_id" required maxlength="64" placeholder="e.g. grafana" />
          <label for="redirect_uris">Redirect URIs (separated by spaces; none for a machine client)</label>
          <input id="redirect_uris" name="redirect_uris" placeholder="https://grafana.example.com/login/generic_oauth" />
          <label for="post_logout_redirect_uris">Post-logout redirect URIs (optional)</label>
          <input id="post_logout_redirect_uris" name="post_logout_redirect_uris" />
          <label for="backchannel_logout_uri">Back-channel logout URI (optional: told when its users sign out)</label>
          <input id="backchannel_logout_uri" name="backchannel_logout_uri" placeholder="https://wiki.example.com/protected/redirect_uri?logout=backchannel" />
          <label for="allowed_roles">Only these roles (comma-separated; empty: everyone)</label>
          <input id="allowed_roles" name="allowed_roles" />
          <label class="check">
            <input type="checkbox" name="public" value="true" /> Public client (no secret, PKCE required: mobile and single-page apps)
          </label>
          <label class="check">
            <input type="checkbox" name="trusted" value="true" /> Trusted (no consent page)
          </label>
          <label class="check">
            <input type="checkbox" name="refresh" value="true" /> Always issue a refresh token (for apps that never ask for offline_access)
          </label>
          <label class="check">
            <input type="checkbox" name="machine" value="true" /> Machine client (client_credentials only: a script's or a service's own token, no user)
          </label>
          <label class="check">
            <input type="checkbox" name="require" value="passkey" /> Require a passkey (a sign-in without one goes through the passkey step first)
          </label>
          <label for="id_token_alg">ID token algorithm</label>
          <select id="id_token_alg" name="id_token_alg">
            <option value="">The server's (OIDC_ID_TOKEN_ALG)</option>
            <option value="RS256">RS256 (every app verifies it)</option>
            <option value="ES256">ES256</option>
            <option value="EdDSA">EdDSA</option>
          </select>
          <button type="submit">Register</button>
        </form>
      </section>
    </Layout>
  );
}

/** Deleting an application: asked on a page of its own that names it. */
function DeleteApplicationPage(view: Omit<ApplicationsView, "clients" | "issuer"> & { clientId: string }) {
  return (
    <Layout appName={view.appName} title={`Delete ${view.clientId}?`} nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} current="/admin/applications" />}>
      <section aria-labelledby="confirm-title">
        <h1 id="confirm-title" safe>{`Delete ${view.clientId}?`}</h1>
        <p>Its tokens stop working at once, and nobody can sign in to it with this server until it is registered again.</p>
        <form method="post" action="/admin/applications/delete" class="stack">
          <Csrf token={view.csrf("application-delete")} />
          <input type="hidden" name="client_id" value={view.clientId} />
          <button type="submit" class="danger solid" safe>{`Delete ${view.clientId}`}</button>
        </form>
        <p>
          <a href="/admin/applications">Cancel</a>
        </p>
      </section>
    </Layout>
  );
}

export interface ApplicationPageDeps extends SignedInForms {
  clients: OidcClients;
  audit: AuditLog;
  withRequester: RequesterPlugin;
  issuer: string;
}

/** GET /admin/applications (role admin): what `latchkey oidc client ...` and the admin API do, as forms. */
export function applicationPages(deps: ApplicationPageDeps) {
  const { appName, flashes, clients, audit, withRequester, issuer } = deps;
  const { adminForm, adminPage, csrfOf, frame } = adminGate(deps);

  /** Runs a change, then back to the list (POST/redirect/GET) with its message; a refusal says why. */
  async function act(request: Request, set: PageSet, principal: BrowserSessionPrincipal, form: string, change: () => Promise<Omit<Flash, "form" | "kind">>) {
    await flashOutcome(flashes, request, set, { sessionId: principal.sessionId, form }, change, (error) => {
      const detail = error.details?.[0];
      return detail ? `${detail.field}: ${detail.message}` : problemOf(error);
    });
    return seeOther(set, "/admin/applications#clients");
  }

  const record = (event: "oidc_client_created" | "oidc_client_deleted" | "oidc_client_secret_rotated", principal: BrowserSessionPrincipal, clientId: string, requester: ClientInfo) =>
    audit.record({ event, userId: principal.userId, ...requester, detail: { via: "page", client_id: clientId } });

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/admin/applications",
      async ({ request, set }) => {
        const principal = await adminPage(request, set, "/admin/applications");
        if (typeof principal === "string") return principal;
        const view = { ...frame(request, set, principal), clients: await clients.list(), issuer };
        return htmlPage(set, 200, String(<ApplicationsPage {...view} />));
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/applications/delete",
      async ({ request, query, set }) => {
        const principal = await adminPage(request, set, "/admin/applications");
        if (typeof principal === "string") return principal;
        const clientId = typeof query.client_id === "string" ? query.client_id : "";
        if (!(await clients.list()).some((client) => client.client_id === clientId)) return seeOther(set, "/admin/applications", 302);
        return htmlPage(set, 200, String(<DeleteApplicationPage appName={appName} username={principal.username} csrf={csrfOf(principal)} clientId={clientId} />));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/applications",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "application-create");
        if (typeof principal === "string") return principal;
        return act(request, set, principal, "application-create", async () => {
          const { client, secret } = await clients.create({
            client_id: field(body, "client_id")?.trim() ?? "",
            redirect_uris: lines(field(body, "redirect_uris")),
            post_logout_redirect_uris: lines(field(body, "post_logout_redirect_uris")),
            allowed_roles: commaList(field(body, "allowed_roles")),
            public: field(body, "public") === "true",
            trusted: field(body, "trusted") === "true",
            backchannel_logout_uri: field(body, "backchannel_logout_uri")?.trim() || null,
            refresh: field(body, "refresh") === "true",
            machine: field(body, "machine") === "true",
            ...(field(body, "id_token_alg") ? { id_token_alg: field(body, "id_token_alg") } : {}),
            ...(field(body, "require") ? { require: field(body, "require") } : {}),
          });
          await record("oidc_client_created", principal, client.client_id, requester);
          return { text: `Application ${client.client_id} registered.`, newKey: secret ? { name: client.client_id, secret } : undefined };
        });
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/applications/secret",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "application-secret");
        if (typeof principal === "string") return principal;
        const clientId = field(body, "client_id") ?? "";
        return act(request, set, principal, "application-secret", async () => {
          const secret = await clients.rotateSecret(clientId);
          await record("oidc_client_secret_rotated", principal, clientId, requester);
          return { text: "New secret made: the old one no longer works.", newKey: { name: clientId, secret } };
        });
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/applications/delete",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "application-delete");
        if (typeof principal === "string") return principal;
        const clientId = field(body, "client_id") ?? "";
        return act(request, set, principal, "application-delete", async () => {
          await clients.delete(clientId);
          await record("oidc_client_deleted", principal, clientId, requester);
          return { text: `Application ${clientId} deleted; its tokens no longer work.` };
        });
      },
      { detail: { hide: true } },
    );
}
