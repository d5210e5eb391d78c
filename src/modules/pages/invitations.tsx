import { Elysia } from "elysia";
import { ApiError, validationFailed } from "../../errors";
import { parseDuration } from "../../lib/duration";
import type { Invitation, Invitations } from "../invitations/service";
import { invitationState } from "../invitations/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { SignedInNav, when } from "./account";
import type { SignedInForms } from "./account-routes";
import { adminGate } from "./admin-routes";
import { Alert, Csrf, Layout, RowTable } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import { signUpErrors, signUpFlow, type SignUpDeps, type SignUpView } from "./signup";

/** The page a dead invitation link opens: why, and what to do, in words (its status is the API's for the same reason). */
const DEAD_LINKS: Record<string, { title: string; text: string }> = {
  invitation_not_found: {
    title: "Invitation not found",
    text: "This invitation link is not valid. Check that you opened the whole link, or ask the person who invited you for a new one.",
  },
  invitation_expired: { title: "Invitation expired", text: "This invitation link has expired. Ask the person who invited you for a new one." },
  invitation_spent: {
    title: "Invitation already used",
    text: "This invitation link has already been used. If you created your account with it, sign in; otherwise ask for a new invitation.",
  },
  invitation_revoked: { title: "Invitation withdrawn", text: "This invitation was withdrawn by an administrator. Ask them for a new one if you still need an account." },
};

interface InvitationsView {
  appName: string;
  username: string;
  csrf: (form: string) => string;
  invitations: Invitation[];
  mailEnabled: boolean;
  notice?: string;
  error?: string;
  /** A link just made: shown this once. */
  created?: { link: string; invitation: Invitation };
  /** What the create form had, after an error. */
  form?: Record<string, string>;
}

const roleList = (raw: string | undefined) =>
  (raw ?? "")
    .split(",")
    .map((role) => role.trim())
    .filter(Boolean);

function InvitationsPage(view: InvitationsView) {
  const now = new Date();
  const form = view.form ?? {};
  return (
    <Layout appName={view.appName} title="Invitations" nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} />}>
      <Alert message={view.notice} kind="notice" />
      {view.created ? (
        <section class="notice" id="new-invitation">
          <h2>Invitation link created</h2>
          <p class="secret" id="invitation-link" safe>
            {view.created.link}
          </p>
          {view.created.invitation.mailed ? (
            <p class="muted">
              Mailed to <span safe>{view.created.invitation.email ?? ""}</span>. Copy it now if you want to send it yourself too: it is shown this once.
            </p>
          ) : (
            <p class="muted">Copy it now and send it to the person you invite: it is shown this once and only its hash is kept.</p>
          )}
        </section>
      ) : (
        ""
      )}
      <section id="invitations">
        <h1>Invitations</h1>
        <RowTable
          headings={["For", "Roles", "State", "Expires", ""]}
          rows={view.invitations}
          empty="No invitation yet."
          row={(invitation) => {
            const state = invitationState(invitation, now);
            return (
              <tr>
                <td safe>{invitation.email ?? "anyone with the link"}</td>
                <td safe>{invitation.roles.join(", ") || "—"}</td>
                <td safe>{state}</td>
                <td safe>{when(invitation.expiresAt)}</td>
                <td>
                  {invitation.revokedAt === null ? (
                    <a class="button" href={`/admin/invitations/revoke?id=${encodeURIComponent(invitation.id)}`}>
                      Revoke
                    </a>
                  ) : (
                    ""
                  )}
                </td>
              </tr>
            );
          }}
        />
      </section>
      <section id="create">
        <h2>Invite someone</h2>
        <Alert message={view.error} />
        <form method="post" action="/admin/invitations" class="stack">
          <Csrf token={view.csrf("invitation-create")} />
          <label for="invite_email">Email (optional)</label>
          <input id="invite_email" name="email" type="email" maxlength="254" autocomplete="off" value={form.email ?? ""} />
          <p class="muted">
            {view.mailEnabled ? "The link is mailed to this address, and the account gets it." : "The account gets this address. This server sends no mail: send the link yourself."}
          </p>
          <label for="invite_roles">Roles (comma-separated, optional)</label>
          <input id="invite_roles" name="roles" placeholder="family" value={form.roles ?? ""} />
          <label for="invite_expires">Expires after</label>
          <input id="invite_expires" name="expires" value={form.expires ?? "7d"} maxlength="12" />
          <p class="muted">For example 30m, 12h, 7d.</p>
          <label for="invite_uses">Accounts it may create</label>
          <input id="invite_uses" name="uses" type="number" min="1" max="1000" value={form.uses ?? "1"} />
          <button type="submit">Create invitation link</button>
        </form>
      </section>
    </Layout>
  );
}

/** The confirmation a revocation goes through, naming the invitation. */
function RevokePage(props: { appName: string; username: string; csrf: (form: string) => string; invitation: Invitation }) {
  const { invitation } = props;
  return (
    <Layout appName={props.appName} title="Revoke invitation" narrow nav={<SignedInNav username={props.username} isAdmin csrf={props.csrf("logout")} />}>
      <section>
        <h1>Revoke this invitation?</h1>
        <p safe>
          {`The invitation for ${invitation.email ?? "anyone with the link"}${invitation.roles.length ? ` (roles ${invitation.roles.join(", ")})` : ""}, ${invitationState(invitation, new Date())}, expiring ${when(invitation.expiresAt)}.`}
        </p>
        <p>Its link will stop working at once. Accounts already made with it stay.</p>
        <form method="post" action="/admin/invitations/revoke" class="stack">
          <Csrf token={props.csrf("invitation-revoke")} />
          <input type="hidden" name="id" value={invitation.id} />
          <button type="submit" class="danger">
            Revoke invitation
          </button>
        </form>
        <p>
          <a href="/admin/invitations">Cancel</a>
        </p>
      </section>
    </Layout>
  );
}

export interface InvitationPageDeps extends SignedInForms, SignUpDeps {
  invitations: Invitations;
  mailEnabled: boolean;
}

/**
 * An invitation's sign-up page (/invite/<token>, open while registration is closed) and the admin's invitations
 * page (/admin/invitations: list, create, revoke through a confirmation).
 */
export function invitationPages(deps: InvitationPageDeps) {
  const { appName, browser, forms, invitations, auth, ipLimit, withRequester, mailEnabled } = deps;
  const flow = signUpFlow(deps);
  const { notAdmin, adminForm } = adminGate(deps);
  const deadLink = (set: PageSet, error: ApiError) => {
    const page = DEAD_LINKS[error.code];
    if (!page) throw error;
    return flow.message(set, error.status, page.title, page.text);
  };
  const signUpForm = (set: PageSet, status: number, token: string, invitation: Invitation, binding: string, extra: Partial<SignUpView> = {}) =>
    flow.page(set, status, {
      title: "You are invited",
      intro: `Create your account on ${appName}.`,
      action: `/invite/${token}`,
      csrf: forms.issue("invite", binding),
      pinnedEmail: invitation.email,
      ...extra,
    });

  const actor = (principal: BrowserSessionPrincipal, requester: { ip: string | null; userAgent: string | null }) => ({
    ...requester,
    userId: principal.userId,
    username: principal.username,
    sessionId: principal.sessionId,
  });

  async function render(set: PageSet, status: number, principal: BrowserSessionPrincipal, extra: Partial<InvitationsView> = {}) {
    const view: InvitationsView = {
      appName,
      username: principal.username,
      csrf: (form) => forms.issue(form, principal.sessionId),
      invitations: await invitations.list(),
      mailEnabled,
      ...extra,
    };
    return htmlPage(set, status, String(<InvitationsPage {...view} />));
  }

  /** The signed-in admin of a GET, or the answer to send instead. */
  async function adminOf(request: Request, set: PageSet, rd: string): Promise<BrowserSessionPrincipal | string> {
    const principal = await browser.current(request);
    if (!principal) return seeOther(set, `/login?rd=${encodeURIComponent(rd)}`, 302);
    return principal.roles.includes("admin") ? principal : notAdmin(set);
  }

  return new Elysia({ tags: ["pages"] })
    .use(withRequester)
    .get(
      "/invite/:token",
      async ({ request, params, set }) => {
        try {
          const invitation = await invitations.usable(params.token);
          return signUpForm(set, 200, params.token, invitation, flow.bindingOf(request, set));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return deadLink(set, error);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/invite/:token",
      async ({ request, params, body, set, requester }) => {
        const refusal = flow.refused(request, body, set, "invite", `/invite/${params.token}`);
        if (refusal !== undefined) return refusal;
        const binding = flow.bindingOf(request, set);
        const input = { username: field(body, "username")?.trim() ?? "", password: field(body, "password") ?? "", email: field(body, "email")?.trim() || null };
        let invitation: Invitation | undefined;
        try {
          ipLimit(requester, "/invite");
          invitation = await invitations.usable(params.token);
          const user = await auth.createAccount(input, requester, invitations.invited(invitation));
          return await flow.finish(request, set, user, input.password, requester);
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          if (error.code in DEAD_LINKS) return deadLink(set, error);
          if (error.status === 429) passRetryAfter(set, error);
          if (!invitation) return flow.message(set, error.status, "Too many attempts", "Too many attempts. Try again later.", { href: `/invite/${params.token}`, text: "Try again" });
          return signUpForm(set, error.status, params.token, invitation, binding, { username: input.username, email: input.email ?? "", errors: signUpErrors(error) });
        }
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/invitations",
      async ({ request, query, set }) => {
        const principal = await adminOf(request, set, "/admin/invitations");
        if (typeof principal === "string") return principal;
        return render(set, 200, principal, { notice: query.done === "revoked" ? "Invitation revoked: its link no longer works." : undefined });
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/invitations",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "invitation-create");
        if (typeof principal === "string") return principal;
        const form = { email: field(body, "email") ?? "", roles: field(body, "roles") ?? "", expires: field(body, "expires") ?? "", uses: field(body, "uses") ?? "" };
        try {
          const expiresIn = parseDuration(form.expires || "7d");
          if (expiresIn === undefined) throw validationFailed([{ field: "expires", message: "Expires after: a duration such as 30m, 12h or 7d." }]);
          const uses = form.uses.trim() === "" ? 1 : Number(form.uses);
          const created = await invitations.create({ email: form.email.trim() || null, roles: roleList(form.roles), expiresIn, maxUses: uses }, actor(principal, requester));
          return render(set, 201, principal, { created });
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return render(set, error.status, principal, { error: error.details?.[0]?.message ?? error.message, form });
        }
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/invitations/revoke",
      async ({ request, query, set }) => {
        const principal = await adminOf(request, set, "/admin/invitations");
        if (typeof principal === "string") return principal;
        try {
          const invitation = await invitations.get(typeof query.id === "string" ? query.id : "");
          return htmlPage(set, 200, String(<RevokePage appName={appName} username={principal.username} csrf={(form) => forms.issue(form, principal.sessionId)} invitation={invitation} />));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return render(set, error.status, principal, { error: error.message });
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/invitations/revoke",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "invitation-revoke");
        if (typeof principal === "string") return principal;
        try {
          await invitations.revoke(field(body, "id") ?? "", actor(principal, requester));
          return seeOther(set, "/admin/invitations?done=revoked");
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          return render(set, error.status, principal, { error: error.message });
        }
      },
      { detail: { hide: true } },
    );
}

/** Every path of these pages and of /signup (HTML for people, left out of the API document). */
export const INVITATION_PAGE_PATHS: ReadonlySet<string> = new Set(["/signup", "/invite/:token", "/admin/invitations", "/admin/invitations/revoke"]);

const FORM_PATHS: ReadonlySet<string> = new Set(["/signup", "/admin/invitations", "/admin/invitations/revoke"]);

/** Whether a POST to `path` takes an HTML form body: /signup, the admin's invitation forms, an invitation's sign-up. */
export const takesInvitationForm = (path: string) => FORM_PATHS.has(path) || /^\/invite\/[^/]+$/.test(path);
