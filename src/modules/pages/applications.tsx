import { Elysia } from "elysia";
import { ApiError } from "../../errors";
import type { ClientInfo, RequesterPlugin } from "../../http/client-ip";
import { ADMIN_ROLE } from "../admin/accounts";
import type { AuditLog } from "../audit/service";
import type { ClientView, OidcClients } from "../oidc/clients";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { SignedInNav } from "./account";
import type { SignedInForms } from "./account-routes";
import { adminGate } from "./admin-routes";
import { Alert, Csrf, Layout, RowAction, RowTable } from "./layout";
import { field, htmlPage, seeOther, type PageSet } from "./respond";

/** Paths of the applications page's forms (their bodies are HTML forms). */
export const APPLICATION_FORM_PATHS = ["/admin/applications", "/admin/applications/delete", "/admin/applications/secret"] as const;

interface ApplicationsView {
  appName: string;
  username: string;
  clients: ClientView[];
  csrf: (form: string) => string;
  notice?: string;
  error?: string;
  /** A secret just created or replaced: shown this once. */
  newSecret?: { clientId: string; secret: string };
}

const lines = (raw: string | undefined) =>
  (raw ?? "")
    .split(/\s+/)
    .map((item) => item.trim())
    .filter(Boolean);
const commaList = (raw: string | undefined) =>
  (raw ?? "")
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);

function ApplicationsPage(view: ApplicationsView) {
  return (
    <Layout appName={view.appName} title="Applications" nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} />}>
      <Alert message={view.notice} kind="notice" />
      <Alert message={view.error} />
      {view.newSecret ? (
        <section class="notice">
          <h2 safe>{`Client secret of ${view.newSecret.clientId}`}</h2>
          <p class="secret" safe>
            {view.newSecret.secret}
          </p>
          <p class="muted">Copy it into the application now: it is stored hashed and shown only this once.</p>
        </section>
      ) : (
        ""
      )}
      <section id="clients">
        <h1>OpenID Connect applications</h1>
        <RowTable
          headings={["Client ID", "Type", "Redirect URIs", "Allowed", ""]}
          rows={view.clients}
          empty="No application is registered yet."
          row={(client) => (
            <tr>
              <td safe>{client.client_id}</td>
              <td safe>{`${client.public ? "public" : "confidential"}${client.trusted ? ", trusted" : ""}`}</td>
              <td safe>{client.redirect_uris.join(" ")}</td>
              <td safe>{[...client.allowed_roles.map((role) => `role ${role}`), ...client.allowed_users.map((id) => `user ${id}`)].join(", ") || "everyone"}</td>
              <td>
                {client.public ? (
                  ""
                ) : (
                  <RowAction
                    action="/admin/applications/secret"
                    csrf={view.csrf("application-secret")}
                    fields={{ client_id: client.client_id }}
                    label="New secret"
                    kind="secondary"
                  />
                )}
                <RowAction action="/admin/applications/delete" csrf={view.csrf("application-delete")} fields={{ client_id: client.client_id }} label="Delete" kind="danger" />
              </td>
            </tr>
          )}
        />
      </section>
      <section id="register">
        <h2>Register an application</h2>
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
          <label>
            <input type="checkbox" name="public" value="true" /> Public client (no secret, PKCE required: mobile and single-page apps)
          </label>
          <label>
            <input type="checkbox" name="trusted" value="true" /> Trusted (no consent page)
          </label>
          <label>
            <input type="checkbox" name="refresh" value="true" /> Always issue a refresh token (for apps that never ask for offline_access)
          </label>
          <label>
            <input type="checkbox" name="machine" value="true" /> Machine client (client_credentials only: a script's or a service's own token, no user)
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

export interface ApplicationPageDeps extends SignedInForms {
  clients: OidcClients;
  audit: AuditLog;
  withRequester: RequesterPlugin;
}

/** GET /admin/applications (role admin): what `latchkey oidc client ...` and the admin API do, as forms. */
export function applicationPages(deps: ApplicationPageDeps) {
  const { appName, browser, forms, clients, audit, withRequester } = deps;
  const { notAdmin, adminForm } = adminGate(deps);

  const render = async (set: PageSet, status: number, principal: BrowserSessionPrincipal, extra: Partial<ApplicationsView> = {}) =>
    htmlPage(
      set,
      status,
      String(<ApplicationsPage appName={appName} username={principal.username} clients={await clients.list()} csrf={(form) => forms.issue(form, principal.sessionId)} {...extra} />),
    );

  /** Runs a change; a refusal (bad input, unknown client) is shown on the page. */
  async function act(set: PageSet, principal: BrowserSessionPrincipal, change: () => Promise<Partial<ApplicationsView>>) {
    try {
      return await render(set, 200, principal, await change());
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const detail = error.details?.[0];
      return render(set, error.status, principal, { error: detail ? `${detail.field}: ${detail.message}` : error.message });
    }
  }

  const record = (event: "oidc_client_created" | "oidc_client_deleted" | "oidc_client_secret_rotated", principal: BrowserSessionPrincipal, clientId: string, requester: ClientInfo) =>
    audit.record({ event, userId: principal.userId, ...requester, detail: { via: "page", client_id: clientId } });

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/admin/applications",
      async ({ request, set }) => {
        const principal = await browser.current(request);
        if (!principal) return seeOther(set, "/login?rd=%2Fadmin%2Fapplications", 302);
        if (!principal.roles.includes(ADMIN_ROLE)) return notAdmin(set);
        return render(set, 200, principal);
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/applications",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "application-create");
        if (typeof principal === "string") return principal;
        return act(set, principal, async () => {
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
          });
          await record("oidc_client_created", principal, client.client_id, requester);
          return { notice: `Application ${client.client_id} registered.`, newSecret: secret ? { clientId: client.client_id, secret } : undefined };
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
        return act(set, principal, async () => {
          const secret = await clients.rotateSecret(clientId);
          await record("oidc_client_secret_rotated", principal, clientId, requester);
          return { notice: "The old secret no longer works.", newSecret: { clientId, secret } };
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
        return act(set, principal, async () => {
          await clients.delete(clientId);
          await record("oidc_client_deleted", principal, clientId, requester);
          return { notice: `Application ${clientId} deleted; its tokens no longer work.` };
        });
      },
      { detail: { hide: true } },
    );
}
