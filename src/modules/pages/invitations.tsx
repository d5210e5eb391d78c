import { Elysia } from "elysia";
import { ApiError, validationFailed } from "../../errors";
import { parseDuration } from "../../lib/duration";
import { commaList } from "../../lib/lists";
import type { Invitation, Invitations } from "../invitations/service";
import { invitationState } from "../invitations/service";
import type { BrowserSessionPrincipal } from "../sessions/service";
import { SignedInNav } from "./account";
import { flashOutcome, problemOf, type SignedInForms } from "./signed-in-forms";
import { actorOf, adminGate } from "./admin-routes";
import { messageFor, type Flash } from "./flash";
import { Alert, Csrf, Layout } from "./layout";
import { field, htmlPage, passRetryAfter, seeOther, type PageSet } from "./respond";
import { Cut, DataTable, When } from "./table";
import { signUpErrors, signUpFlow, type SignUpDeps, type SignUpView } from "./signup";
import type { PasskeyFallbacks } from "../auth/passkey-fallbacks";
import type { User } from "../../db/schema";
import type { ClientInfo } from "../../http/client-ip";
import { toAddPasskey } from "./lost-passkey";

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
  /** What the last form left (POST/redirect/GET): a new link (shown this once) or a refusal, beside its form. */
  flash?: Flash;
}

const forWhom = (invitation: Invitation) => invitation.email ?? "anyone with the link";

function InvitationsPage(view: InvitationsView) {
  const now = new Date();
  const listed = messageFor(view.flash, "invitation-revoke");
  const created = messageFor(view.flash, "invitation-create");
  return (
    <Layout appName={view.appName} title="Invitations" nav={<SignedInNav username={view.username} isAdmin csrf={view.csrf("logout")} current="/admin/invitations" />}>
      <section id="invitations" aria-labelledby="invitations-title">
        <h1 id="invitations-title">Invitations</h1>
        {listed ? <Alert message={listed.text} kind={listed.kind} /> : ""}
        <DataTable
          label="Invitations"
          columns={[{ label: "For" }, { label: "Roles" }, { label: "State" }, { label: "Expires" }, { label: "Created" }, { label: "", kind: "end" }]}
          rows={view.invitations}
          empty="No invitation yet."
          cells={(invitation) => [
            <Cut text={forWhom(invitation)} />,
            <Cut text={invitation.roles.join(", ") || "—"} />,
            <span safe>{invitationState(invitation, now)}</span>,
            <When date={invitation.expiresAt} />,
            <When date={invitation.createdAt} />,
            invitation.revokedAt === null ? (
              <a class="button danger" href={`/admin/invitations/revoke?id=${encodeURIComponent(invitation.id)}`}>
                Revoke…
              </a>
            ) : (
              <span />
            ),
          ]}
        />
      </section>
      <section id="create" aria-labelledby="create-title">
        <h2 id="create-title">Invite someone</h2>
        {created ? <Alert message={created.text} kind={created.kind} /> : ""}
        {created?.newKey ? (
          <div class="message notice" id="new-invitation">
            <p class="secret" id="invitation-link" safe>
              {created.newKey.secret}
            </p>
          </div>
        ) : (
          ""
        )}
        <form method="post" action="/admin/invitations" class="stack">
          <Csrf token={view.csrf("invitation-create")} />
          <label for="invite_email">Email (optional)</label>
          <input id="invite_email" name="email" type="email" maxlength="254" autocomplete="off" />
          <p class="muted">
            {view.mailEnabled ? "The link is mailed to this address, and the account gets it." : "The account gets this address. This server sends no mail: send the link yourself."}
          </p>
          <label for="invite_roles">Roles (comma-separated, optional)</label>
          <input id="invite_roles" name="roles" placeholder="e.g. family" />
          <label for="invite_expires">Expires after (for example 30m, 12h, 7d)</label>
          <input id="invite_expires" name="expires" value="7d" maxlength="12" />
          <label for="invite_uses">Accounts it may create</label>
          <input id="invite_uses" name="uses" type="number" min="1" max="1000" value="1" />
          <button type="submit">Create invitation link</button>
        </form>
      </section>
    </Layout>
  );
}

/**
 * Revoking an invitation: asked on a page of its own that names it (the admin pages' confirmation pattern). The
 * address goes in the facts, cut to the width (a long one would widen a heading past a phone's screen).
 */
function RevokePage(props: { appName: string; username: string; csrf: (form: string) => string; invitation: Invitation }) {
  const { invitation } = props;
  return (
    <Layout appName={props.appName} title="Revoke this invitation?" nav={<SignedInNav username={props.username} isAdmin csrf={props.csrf("logout")} current="/admin/invitations" />}>
      <section aria-labelledby="confirm-title">
        <h1 id="confirm-title">Revoke this invitation?</h1>
        <dl class="facts">
          <dt>For</dt>
          <dd>
            <Cut text={forWhom(invitation)} />
          </dd>
          <dt>Roles</dt>
          <dd>
            <Cut text={invitation.roles.join(", ") || "none"} />
          </dd>
          <dt>State</dt>
          <dd safe>{invitationState(invitation, new Date())}</dd>
          <dt>Expires</dt>
          <dd>
            <When date={invitation.expiresAt} />
          </dd>
        </dl>
        <p>Its link stops working at once. Accounts already made with it stay.</p>
        <form method="post" action="/admin/invitations/revoke" class="stack">
          <Csrf token={props.csrf("invitation-revoke")} />
          <input type="hidden" name="id" value={invitation.id} />
          <button type="submit" class="danger solid">
            Revoke the invitation
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
  /** "Use a passkey instead": the account's first session, then the page that adds a passkey. */
  fallbacks: PasskeyFallbacks;
}

/**
 * An invitation's sign-up page (/invite/<token>, open while registration is closed) and the admin's invitations
 * page (/admin/invitations: list, create, revoke through a confirmation).
 */
export function invitationPages(deps: InvitationPageDeps) {
  const { appName, forms, flashes, invitations, auth, ipLimit, withRequester, mailEnabled } = deps;
  const flow = signUpFlow(deps);
  const { adminForm, adminPage, csrfOf, frame } = adminGate(deps);
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
      passkeyOption: true,
      ...extra,
    });

  /** A passkey-first account signs in at once and goes to add its passkey; an account that may not sign in yet is told why. */
  async function passkeyFirstSession(request: Request, set: PageSet, user: User, client: ClientInfo) {
    try {
      return toAddPasskey(deps, request, set, await deps.fallbacks.afterInvitation(user, client));
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      if (error.code === "user_not_verified")
        return flow.message(set, 201, "Check your mail", "Your account is created. Confirm your email address with the code we sent, then choose \"Lost your passkey?\" on the sign-in page to get a link that lets you add one.");
      return flow.message(set, 201, "Account created", error.message);
    }
  }

  /** Runs a change, then back to the page (POST/redirect/GET) with its message beside `form`; a refusal says why. */
  async function act(request: Request, set: PageSet, principal: BrowserSessionPrincipal, form: string, change: () => Promise<Omit<Flash, "form" | "kind">>) {
    await flashOutcome(flashes, request, set, { sessionId: principal.sessionId, form }, change);
    return seeOther(set, form === "invitation-create" ? "/admin/invitations#create" : "/admin/invitations#invitations");
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
        // "Use a passkey instead": no password at all (whatever the field held), a passkey right after.
        const passkeyFirst = field(body, "method") === "passkey";
        const password = passkeyFirst ? null : (field(body, "password") ?? "");
        const input = { username: field(body, "username")?.trim() ?? "", password, email: field(body, "email")?.trim() || null };
        let invitation: Invitation | undefined;
        try {
          ipLimit(requester, "/invite");
          invitation = await invitations.usable(params.token);
          const user = await auth.createAccount(input, requester, invitations.invited(invitation));
          if (password === null) return await passkeyFirstSession(request, set, user, requester);
          return await flow.finish(request, set, user, password, requester);
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
      async ({ request, set }) => {
        const principal = await adminPage(request, set, "/admin/invitations");
        if (typeof principal === "string") return principal;
        const view = { ...frame(request, set, principal), invitations: await invitations.list(), mailEnabled };
        return htmlPage(set, 200, String(<InvitationsPage {...view} />));
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/invitations",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "invitation-create");
        if (typeof principal === "string") return principal;
        return act(request, set, principal, "invitation-create", async () => {
          const expiresIn = parseDuration(field(body, "expires") || "7d");
          if (expiresIn === undefined) throw validationFailed([{ field: "expires", message: "Expires after: a duration such as 30m, 12h or 7d." }]);
          const uses = (field(body, "uses") ?? "").trim();
          const { invitation, link } = await invitations.create(
            { email: field(body, "email")?.trim() || null, roles: commaList(field(body, "roles")), expiresIn, maxUses: uses === "" ? 1 : Number(uses) },
            actorOf(principal, requester),
          );
          const text = invitation.mailed
            ? `Invitation link created and mailed to ${invitation.email}. It is shown this once: copy it now if you want to send it yourself too.`
            : "Invitation link created. Copy it now and send it to the person you invite: it is shown this once and only its hash is kept.";
          return { text, newKey: { name: forWhom(invitation), secret: link } };
        });
      },
      { detail: { hide: true } },
    )
    .get(
      "/admin/invitations/revoke",
      async ({ request, query, set }) => {
        const principal = await adminPage(request, set, "/admin/invitations");
        if (typeof principal === "string") return principal;
        try {
          const invitation = await invitations.get(typeof query.id === "string" ? query.id : "");
          return htmlPage(set, 200, String(<RevokePage appName={appName} username={principal.username} csrf={csrfOf(principal)} invitation={invitation} />));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          flashes.put(request, set, principal.sessionId, { form: "invitation-revoke", kind: "error", text: problemOf(error) });
          return seeOther(set, "/admin/invitations#invitations", 302);
        }
      },
      { detail: { hide: true } },
    )
    .post(
      "/admin/invitations/revoke",
      async ({ request, body, set, requester }) => {
        const principal = await adminForm(request, body, set, "invitation-revoke");
        if (typeof principal === "string") return principal;
        return act(request, set, principal, "invitation-revoke", async () => {
          const invitation = await invitations.revoke(field(body, "id") ?? "", actorOf(principal, requester));
          return { text: `Invitation ${invitation.email ? `for ${invitation.email} ` : ""}revoked: its link no longer works.` };
        });
      },
      { detail: { hide: true } },
    );
}
/** Every path of these pages and of /signup (HTML for people, left out of the API document). */
export const INVITATION_PAGE_PATHS: ReadonlySet<string> = new Set(["/signup", "/invite/:token", "/admin/invitations", "/admin/invitations/revoke"]);

const FORM_PATHS: ReadonlySet<string> = new Set(["/signup", "/admin/invitations", "/admin/invitations/revoke"]);

/** Whether a POST to `path` takes an HTML form body: /signup, the admin's invitation forms, an invitation's sign-up. */
export const takesInvitationForm = (path: string) => FORM_PATHS.has(path) || /^\/invite\/[^/]+$/.test(path);
