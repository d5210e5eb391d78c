import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AUTH, Client, MODES, send, type Mode } from "../support/client";
import { freePort, removeDataDir, runCli, startServer, tempDataDir, type RunningServer } from "../support/server";
import { codeIn, linkIn, mailCatcherForFile, smtpEnv, startMailCatcher, type MailCatcher, type ReceivedMail } from "../support/smtp";
import { openTestDatabase } from "../support/database";

const PASSWORD = "a long passphrase";
const NEW_PASSWORD = "another long passphrase";
const FORGOT_ANSWER = { message: "If an account has this verified address, a code and a link are on their way." };

const smtp = mailCatcherForFile();

const mailTo = (address: string, subject: string) => (mail: ReceivedMail) => mail.to === address && mail.subject.includes(subject);

async function auditEvents(server: RunningServer, event: string): Promise<{ user_id: string | null; detail: string }[]> {
  const db = await openTestDatabase(server.dataDir);
  try {
    return await db.all<{ user_id: string | null; detail: string }>("SELECT user_id, detail FROM audit_events WHERE event = ? ORDER BY id", event);
  } finally {
    await db.close();
  }
}

/** Registers `name` with `name@example.test` and verifies the address with the mailed code. */
async function registerVerified(client: Client, name: string) {
  const email = `${name}@example.test`;
  const registered = await client.register(name, PASSWORD, email);
  expect(registered.status).toBe(201);
  const mail = await smtp.catcher.waitForMail(mailTo(email, "confirm your email"));
  const verified = await send(client.base, "POST", `${AUTH}/verify-email`, { json: { email, code: codeIn(mail) } });
  expect(verified.status).toBe(200);
  expect(verified.body).toEqual({ message: "Email address verified." });
  return email;
}

describe("mail over SMTP with STARTTLS and with implicit TLS", () => {
  for (const implicitTls of [false, true]) {
    test(`${implicitTls ? "smtps:// (implicit TLS, 465-style)" : "smtp:// with STARTTLS (587-style)"}: the binary delivers a verification mail with a text and an HTML part`, async () => {
      const server = await startServer({
        ...smtpEnv(smtp.catcher, smtp.certificate, implicitTls),
        ALLOW_REGISTRATION: "true",
        APP_NAME: "Acme Auth",
        PUBLIC_URL: "https://auth.acme.test",
      });
      try {
        const email = `tls-${implicitTls}@example.test`;
        expect((await new Client(server.url, "bearer").register(`tls-${implicitTls}`, PASSWORD, email)).status).toBe(201);
        const mail = await smtp.catcher.waitForMail(mailTo(email, "confirm your email"));
        expect(mail.secure).toBe(true);
        expect(mail.subject).toBe("Acme Auth: confirm your email address");
        expect(mail.raw).toContain("From: Latchkey Test <auth@example.test>");
        expect(mail.text).toContain(`Your confirmation code is ${codeIn(mail)}`);
        expect(linkIn(mail, "/api/v1/auth/verify-email")).toStartWith("https://auth.acme.test/api/v1/auth/verify-email?token=");
        expect(mail.html).toContain(codeIn(mail));
        expect(mail.html).toContain('href="https://auth.acme.test/api/v1/auth/verify-email?token=');
        expect(mail.html).not.toMatch(/<img|url\(/i);
      } finally {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      }
    });
  }

  test("the mailed verification link opens a page in the sign-in pages' layout; the spent link's page says so (400)", async () => {
    const server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", APP_NAME: "Acme Auth" });
    try {
      const email = "follow-link@example.test";
      expect((await new Client(server.url, "bearer").register("follow-link", PASSWORD, email)).status).toBe(201);
      const path = linkIn(await smtp.catcher.waitForMail(mailTo(email, "confirm your email")), "/api/v1/auth/verify-email").replace(/^https?:\/\/[^/]+/, "");
      const opened = await send(server.url, "GET", path);
      expect(opened.status).toBe(200);
      expect(opened.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(opened.headers.get("cache-control")).toBe("no-store");
      expect(opened.headers.get("content-security-policy")).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; .*; form-action 'self'$/);
      expect(opened.text).toContain("<title>Email address verified · Acme Auth</title>");
      expect(opened.text).toContain('<a href="/login">Sign in</a>');
      const again = await send(server.url, "GET", path);
      expect(again.status).toBe(400);
      expect(again.text).toContain("<h1>This link does not work</h1>");
      expect(again.text).toContain("The link is wrong, already used or expired.");
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("?starttls=required refuses a server that does not offer STARTTLS (the implicit-TLS port speaks no plain SMTP): the mail is retried, then dropped with an audit event", async () => {
    const server = await startServer({
      ...smtpEnv(smtp.catcher, smtp.certificate),
      SMTP_URL: `smtp://127.0.0.1:${(await startPlainRefuser()).port}?starttls=required`,
      ALLOW_REGISTRATION: "true",
      MAIL_RETRY_INTERVAL: "1s",
      MAIL_MAX_ATTEMPTS: "2",
    });
    try {
      expect((await new Client(server.url, "bearer").register("insist", PASSWORD, "insist@example.test")).status).toBe(201);
      await server.waitForOutput('"event":"mail_dropped"', 15_000);
      const [dropped] = await auditEvents(server, "mail_dropped");
      expect(JSON.parse(dropped!.detail)).toMatchObject({ kind: "verify_email", attempts: 2 });
      expect(dropped!.user_id).not.toBeNull();
      expect(smtp.catcher.mails.some((mail) => mail.to === "insist@example.test")).toBe(false);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});

/** An SMTP server that offers no STARTTLS (a bare ESMTP greeting and EHLO), to prove ?starttls=required insists. */
async function startPlainRefuser() {
  const listener = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(socket) {
        socket.write("220 plain ESMTP\r\n");
      },
      data(socket, data) {
        const line = data.toString().trim().toUpperCase();
        if (line.startsWith("EHLO")) socket.write("250-plain\r\n250 AUTH PLAIN\r\n");
        else if (line.startsWith("QUIT")) socket.end("221 bye\r\n");
        else socket.write("502 no\r\n");
      },
    },
  });
  afterAll(() => listener.stop(true));
  return listener;
}

describe("password reset in every delivery mode", () => {
  for (const mode of MODES) {
    describe(mode, () => {
      let server: RunningServer;
      beforeAll(async () => {
        server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), TOKEN_DELIVERY: mode, ALLOW_REGISTRATION: "true", PUBLIC_URL: "http://127.0.0.1", RATE_LIMIT_IP_BURST: "1000" });
      });
      afterAll(async () => {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      });
      const client = (origin = "http://127.0.0.1") => new Client(server.url, mode as Mode, { origin });

      test("forgot answers 202 with the same body for a known and an unknown address; the code resets the password once, ends every session and keeps API keys", async () => {
        const alice = client();
        const email = await registerVerified(alice, `reset-${mode}`);
        expect((await alice.login(email, PASSWORD)).status).toBe(200);
        const key = await alice.request("POST", `${AUTH}/keys`, { json: { name: "ci" } });
        expect(key.status).toBe(201);
        const oldAccess = alice.access!;

        const known = await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email: email.toUpperCase() } });
        const unknown = await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email: `nobody-${mode}@example.test` } });
        expect(known.status).toBe(202);
        expect(unknown.status).toBe(202);
        expect(known.text).toBe(unknown.text);
        expect(known.body).toEqual(FORGOT_ANSWER);

        const mail = await smtp.catcher.waitForMail(mailTo(email, "reset your password"));
        expect(mail.text).toContain("15 minutes");
        const wrong = await send(server.url, "POST", `${AUTH}/password/reset`, {
          json: { email, code: codeIn(mail) === "000000" ? "111111" : "000000", new_password: NEW_PASSWORD },
        });
        expect(wrong.status).toBe(400);
        expect(wrong.body).toEqual({ error: "invalid_code", message: "The code or link is wrong, already used or expired." });
        const weak = await send(server.url, "POST", `${AUTH}/password/reset`, { json: { email, code: codeIn(mail), new_password: "password" } });
        expect(weak.status).toBe(422);
        expect(weak.body.error).toBe("weak_password");

        const reset = await send(server.url, "POST", `${AUTH}/password/reset`, { json: { email, code: codeIn(mail), new_password: NEW_PASSWORD } });
        expect(reset.status).toBe(200);
        // The registration's session and the login's.
        expect(reset.body).toEqual({ message: "Password changed; 2 session(s) ended." });
        // The old access token fails at once; the API key still works.
        alice.setAccess(oldAccess);
        expect((await alice.me()).status).toBe(401);
        expect((await send(server.url, "GET", `${AUTH}/me`, { headers: { "x-api-key": key.body.api_key } })).status).toBe(200);
        const again = await send(server.url, "POST", `${AUTH}/password/reset`, { json: { email, code: codeIn(mail), new_password: "yet another passphrase" } });
        expect(again.status).toBe(400);
        expect(again.body.error).toBe("invalid_code");
        expect((await client().login(email, PASSWORD)).status).toBe(401);
        expect((await client().login(email, NEW_PASSWORD)).status).toBe(200);
        const notice = await smtp.catcher.waitForMail(mailTo(email, "your password was changed"));
        expect(notice.text).toContain("The password of your account was just changed.");
      });

      test("changing one's email: the password, a code mailed to the new address, then the switch (verified) and a notice to the old one", async () => {
        const carol = client();
        const email = await registerVerified(carol, `change-${mode}`);
        const newEmail = `changed-${mode}@example.test`;
        const wrongPassword = await carol.request("POST", `${AUTH}/email`, { json: { new_email: newEmail, current_password: "not the password" } });
        expect(wrongPassword.status).toBe(403);
        expect(wrongPassword.body.error).toBe("invalid_current_password");
        const taken = await carol.request("POST", `${AUTH}/email`, { json: { new_email: email, current_password: PASSWORD } });
        expect(taken.status).toBe(409);
        expect(taken.body.error).toBe("email_taken");
        const requested = await carol.request("POST", `${AUTH}/email`, { json: { new_email: newEmail, current_password: PASSWORD } });
        expect(requested.status).toBe(202);
        const code = codeIn(await smtp.catcher.waitForMail(mailTo(newEmail, "confirm your new email")));
        // Nothing changes before the code comes back.
        expect((await carol.me()).body.user.email).toBe(email);
        const wrong = await carol.request("POST", `${AUTH}/email/confirm`, { json: { code: code === "000000" ? "111111" : "000000" } });
        expect(wrong.status).toBe(400);
        expect(wrong.body.error).toBe("invalid_code");
        const confirmed = await carol.request("POST", `${AUTH}/email/confirm`, { json: { code } });
        expect(confirmed.status).toBe(200);
        expect(confirmed.body.user).toMatchObject({ email: newEmail, email_verified: true });
        expect((await carol.me()).body.user.email).toBe(newEmail);
        const notice = await smtp.catcher.waitForMail(mailTo(email, "your email address was changed"));
        expect(notice.text).toContain(`The email address of your account is now ${newEmail}.`);
        expect((await carol.request("POST", `${AUTH}/email/confirm`, { json: { code } })).status).toBe(400);
        expect((await client().login(newEmail, PASSWORD)).status).toBe(200);
        expect((await client().login(email, PASSWORD)).status).toBe(401);
      });

      test("the mailed link opens a form whose post sets the password; the link works once", async () => {
        const bob = client();
        const email = await registerVerified(bob, `link-${mode}`);
        expect((await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email } })).status).toBe(202);
        const link = linkIn(await smtp.catcher.waitForMail(mailTo(email, "reset your password")), "/api/v1/auth/password/reset");
        const path = link.replace("http://127.0.0.1", "");
        const form = await send(server.url, "GET", path);
        expect(form.status).toBe(200);
        expect(form.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(form.headers.get("content-security-policy")).toContain("form-action 'self'");
        const token = decodeURIComponent(new URL(link).searchParams.get("token")!);
        expect(form.text).toContain(`name="token" value="${token}"`);
        const posted = await send(server.url, "POST", `${AUTH}/password/reset`, { form: { token, new_password: NEW_PASSWORD } });
        expect(posted.status).toBe(200);
        expect(posted.text).toContain("Your password is changed");
        const reused = await send(server.url, "POST", `${AUTH}/password/reset`, { json: { token, new_password: "yet another passphrase" } });
        expect(reused.status).toBe(400);
        expect(reused.body.error).toBe("invalid_code");
        expect((await client().login(email, NEW_PASSWORD)).status).toBe(200);
      });
    });
  }
});

describe("outbox: retry, restart, expiry and limits", () => {
  test("an SMTP server that is down gets the queued mail once it comes back, without a restart", async () => {
    const ports = { starttlsPort: freePort(), tlsPort: freePort() };
    const server = await startServer({ ...smtpEnv(ports, smtp.certificate), ALLOW_REGISTRATION: "true", MAIL_RETRY_INTERVAL: "1s" });
    let back: MailCatcher | undefined;
    try {
      expect((await new Client(server.url, "bearer").register("outage", PASSWORD, "outage@example.test")).status).toBe(201);
      // Two failed attempts (nothing listens): the mail is being retried with backoff.
      await waitForOutbox(server.dataDir, (row) => row.attempts >= 2);
      back = await startMailCatcher(smtp.certificate, ports);
      const mail = await back.waitForMail(mailTo("outage@example.test", "confirm your email"), 15_000);
      expect(codeIn(mail)).toMatch(/^\d{6}$/);
      await waitForOutbox(server.dataDir, () => false, (rows) => rows.length === 0);
    } finally {
      await back?.stop();
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });

  test("mail queued before a restart (its SMTP server down) is sent after the restart", async () => {
    const certificateEnv = smtpEnv({ starttlsPort: 0, tlsPort: 0 }, smtp.certificate);
    const ports = { starttlsPort: freePort(), tlsPort: freePort() };
    const dataDir = tempDataDir();
    const env = { ...certificateEnv, ...smtpEnv(ports, smtp.certificate), ALLOW_REGISTRATION: "true", MAIL_RETRY_INTERVAL: "1s" };
    let server = await startServer(env, dataDir);
    let late: MailCatcher | undefined;
    try {
      expect((await new Client(server.url, "bearer").register("late", PASSWORD, "late@example.test")).status).toBe(201);
      // The first attempt has failed (nothing listens yet): the mail waits in the outbox.
      await waitForOutbox(dataDir, (row) => row.attempts >= 1);
      expect(await server.stop()).toBe(0);
      expect(await outboxRows(dataDir)).toHaveLength(1);
      late = await startMailCatcher(smtp.certificate, ports);
      server = await startServer(env, dataDir);
      const mail = await late.waitForMail(mailTo("late@example.test", "confirm your email"));
      expect(codeIn(mail)).toMatch(/^\d{6}$/);
      await waitForOutbox(dataDir, () => false, (rows) => rows.length === 0);
    } finally {
      await late?.stop();
      expect(await server.stop()).toBe(0);
      removeDataDir(dataDir);
    }
  });
});

type OutboxRow = { attempts: number; payload: string };
async function outboxRows(dataDir: string): Promise<OutboxRow[]> {
  const db = await openTestDatabase(dataDir);
  try {
    return await db.all<OutboxRow>("SELECT attempts, payload FROM mail_outbox");
  } finally {
    await db.close();
  }
}

/** Polls the outbox until some row matches `row`, or until `all` holds for the rows. */
async function waitForOutbox(dataDir: string, row: (row: OutboxRow) => boolean, all: (rows: OutboxRow[]) => boolean = () => false) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const rows = await outboxRows(dataDir);
    if (rows.some(row) || all(rows)) return rows;
    if (Date.now() > deadline) throw new Error(`outbox never matched: ${JSON.stringify(rows)}`);
    await Bun.sleep(50);
  }
}

describe("configuration: a feature that mails without a transport, and bad mail settings, stop the start with exit 2", () => {
  const serve = async (env: Record<string, string>) => {
    const dataDir = tempDataDir();
    try {
      return await runCli(["serve"], { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(freePort()), ...env });
    } finally {
      removeDataDir(dataDir);
    }
  };
  const cases: [string, Record<string, string>, string][] = [
    ["LOGIN_EMAIL_CODE without SMTP_URL", { LOGIN_EMAIL_CODE: "true" }, "latchkey: configuration error: LOGIN_EMAIL_CODE=true sends mail: set SMTP_URL (and MAIL_FROM), or MAIL_TRANSPORT=log for local trials\n"],
    ["REQUIRE_EMAIL_VERIFICATION without SMTP_URL", { REQUIRE_EMAIL_VERIFICATION: "true" }, "latchkey: configuration error: REQUIRE_EMAIL_VERIFICATION=true sends mail: set SMTP_URL (and MAIL_FROM), or MAIL_TRANSPORT=log for local trials\n"],
    ["SMTP_URL without MAIL_FROM", { SMTP_URL: "smtp://127.0.0.1:2525" }, 'latchkey: configuration error: MAIL_FROM is required with SMTP_URL (e.g. MAIL_FROM="Latchkey <auth@example.com>")\n'],
    ["an SMTP_URL of another scheme (its password is not echoed)", { SMTP_URL: "http://user:hunter2@mail.example.com", MAIL_FROM: "a@b.test" }, "latchkey: configuration error: SMTP_URL is invalid: expected smtp://user:pass@host:587 (STARTTLS when offered; ?starttls=required insists) or smtps://user:pass@host:465\n"],
    ["an unreadable SMTP_TLS_CA_FILE", { SMTP_URL: "smtp://127.0.0.1:2525", MAIL_FROM: "a@b.test", SMTP_TLS_CA_FILE: "/nonexistent/ca.pem" }, "latchkey: configuration error: SMTP_TLS_CA_FILE=/nonexistent/ca.pem cannot be read (ENOENT)\n"],
    ["MAIL_TRANSPORT=carrier-pigeon", { MAIL_TRANSPORT: "carrier-pigeon" }, 'latchkey: configuration error: MAIL_TRANSPORT="carrier-pigeon" is invalid: expected smtp or log\n'],
    // Roles are lower case: "Admin" would match nobody and enforce nothing.
    ["MFA_REQUIRED_ROLES=Admin", { MFA_REQUIRED_ROLES: "Admin" }, `latchkey: configuration error: MFA_REQUIRED_ROLES: role "Admin" is not a role name: roles are 1-32 characters of a-z, 0-9, '_' or '-', as the API stores them (write "admin")\n`],
    ["MFA_REQUIRED_ROLES=admin,power user", { MFA_REQUIRED_ROLES: "admin,power user" }, `latchkey: configuration error: MFA_REQUIRED_ROLES: role "power user" is not a role name: roles are 1-32 characters of a-z, 0-9, '_' or '-', as the API stores them\n`],
  ];
  for (const [name, env, line] of cases)
    test(name, async () => {
      const result = await serve(env);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(line);
    });

  test("MAIL_TEMPLATES_DIR is checked at start: an unknown placeholder, a remote image or an unknown file name", async () => {
    const dir = tempDataDir();
    try {
      writeFileSync(join(dir, "password_reset.txt"), "Your code: {{code}} {{password}}");
      let result = await serve({ MAIL_TRANSPORT: "log", MAIL_TEMPLATES_DIR: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        "latchkey: configuration error: MAIL_TEMPLATES_DIR: password_reset.txt uses {{password}}, which password_reset mails do not have (they have app_name, public_url, username, code, link, minutes)\n",
      );
      writeFileSync(join(dir, "password_reset.txt"), "Your code: {{ code }}");
      writeFileSync(join(dir, "password_reset.html"), '<p>{{code}}</p><img src="https://tracker.example/pixel.gif">');
      result = await serve({ MAIL_TRANSPORT: "log", MAIL_TEMPLATES_DIR: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe("latchkey: configuration error: MAIL_TEMPLATES_DIR: password_reset.html loads a remote resource (an image, stylesheet or url()): mails carry none\n");
      rmSync(join(dir, "password_reset.html"));
      writeFileSync(join(dir, "welcome.txt"), "hi");
      result = await serve({ MAIL_TRANSPORT: "log", MAIL_TEMPLATES_DIR: dir });
      expect(result.code).toBe(2);
      expect(result.stderr).toStartWith("latchkey: configuration error: MAIL_TEMPLATES_DIR: welcome.txt is not a template name");
    } finally {
      removeDataDir(dir);
    }
  });
});

describe("MAIL_TRANSPORT=log", () => {
  test("warns at start and prints each mail (recipient, subject, code, link) instead of sending it; an overriding template is used", async () => {
    const templates = tempDataDir();
    writeFileSync(join(templates, "verify_email.subject.txt"), "Welcome to {{app_name}}, {{username}}\n");
    const server = await startServer({ MAIL_TRANSPORT: "log", ALLOW_REGISTRATION: "true", MAIL_TEMPLATES_DIR: templates, APP_NAME: "Homelab" });
    try {
      expect(server.output()).toContain("latchkey: warning: MAIL_TRANSPORT=log prints every mail (codes and links included) to standard output instead of sending it: for local trials only");
      expect((await new Client(server.url, "bearer").register("logged", PASSWORD, "logged@example.test")).status).toBe(201);
      const output = await server.waitForOutput('"type":"mail"');
      const line = output.split("\n").find((entry) => entry.includes('"type":"mail"'))!;
      const mail = JSON.parse(line);
      expect(mail.to).toBe("logged@example.test");
      expect(mail.subject).toBe("Welcome to Homelab, logged");
      expect(mail.text).toMatch(/Your confirmation code is \d{6}/);
      expect(mail.text).toContain(`${server.url.replace("127.0.0.1", "localhost")}/api/v1/auth/verify-email?token=`);
      const code = /code is (\d{6})/.exec(mail.text)![1];
      expect((await send(server.url, "POST", `${AUTH}/verify-email`, { json: { email: "logged@example.test", code } })).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
      removeDataDir(templates);
    }
  });
});

describe("codes: expiry, the 5-wrong-answers limit, one mail a minute per address", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ ...smtpEnv(smtp.catcher, smtp.certificate), ALLOW_REGISTRATION: "true", PASSWORD_RESET_TTL: "1s", RATE_LIMIT_IP_BURST: "1000", TRUST_PROXY: "true" });
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    removeDataDir(server.dataDir);
  });

  test("an expired reset code is invalid_code", async () => {
    const email = await registerVerified(new Client(server.url, "bearer"), "expiring");
    expect((await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email } })).status).toBe(202);
    const mail = await smtp.catcher.waitForMail(mailTo(email, "reset your password"));
    await Bun.sleep(1100); // PASSWORD_RESET_TTL=1s: the code's lifetime itself is under test
    const late = await send(server.url, "POST", `${AUTH}/password/reset`, { json: { email, code: codeIn(mail), new_password: NEW_PASSWORD } });
    expect(late.status).toBe(400);
    expect(late.body.error).toBe("invalid_code");
  });

  test("a code dies after 5 wrong answers (even the right one is then refused); wrong codes count toward the (account, address) limit", async () => {
    const email = "guessed@example.test";
    expect((await new Client(server.url, "bearer").register("guessed", PASSWORD, email)).status).toBe(201);
    const code = codeIn(await smtp.catcher.waitForMail(mailTo(email, "confirm your email")));
    const wrong = code === "123456" ? "654321" : "123456";
    // From five addresses: the per-code limit, not the per-(account, address) delay, is what stops the sixth.
    for (let attempt = 1; attempt <= 5; attempt++) {
      const reply = await send(server.url, "POST", `${AUTH}/verify-email`, { json: { email, code: wrong }, headers: { "x-forwarded-for": `198.51.100.${attempt}` } });
      expect(reply.status).toBe(400);
      expect(reply.body.error).toBe("invalid_code");
    }
    const right = await send(server.url, "POST", `${AUTH}/verify-email`, { json: { email, code }, headers: { "x-forwarded-for": "198.51.100.9" } });
    expect(right.status).toBe(400);
    expect(right.body.error).toBe("invalid_code");

    // From one address, the sixth wrong answer waits like a sixth wrong password.
    for (let attempt = 1; attempt <= 5; attempt++)
      expect((await send(server.url, "POST", `${AUTH}/verify-email`, { json: { email, code: wrong }, headers: { "x-forwarded-for": "203.0.113.77" } })).status).toBe(400);
    const sixth = await send(server.url, "POST", `${AUTH}/verify-email`, { json: { email, code: wrong }, headers: { "x-forwarded-for": "203.0.113.77" } });
    expect(sixth.status).toBe(429);
    expect(sixth.body.error).toBe("rate_limited");
  });

  test("forgot twice within a minute mails once; the answers are byte-identical", async () => {
    const email = await registerVerified(new Client(server.url, "bearer"), "throttled");
    const first = await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email } });
    const second = await send(server.url, "POST", `${AUTH}/password/forgot`, { json: { email } });
    expect(first.status).toBe(202);
    expect(second.text).toBe(first.text);
    // Mail goes out in order: once a later mail has arrived, the second request's would have too.
    const marker = await registerVerified(new Client(server.url, "bearer"), "marker");
    await smtp.catcher.waitForMail(mailTo(marker, "confirm your email"));
    expect(smtp.catcher.mails.filter(mailTo(email, "reset your password"))).toHaveLength(1);
  });
});

describe("REQUIRE_EMAIL_VERIFICATION in every delivery mode", () => {
  for (const mode of MODES) {
    test(`${mode}: registration needs an email and issues no tokens; sign-in and the password grant answer 403 user_not_verified only after the right password; the link verifies`, async () => {
      const server = await startServer({
        ...smtpEnv(smtp.catcher, smtp.certificate),
        TOKEN_DELIVERY: mode,
        ALLOW_REGISTRATION: "true",
        REQUIRE_EMAIL_VERIFICATION: "true",
        PUBLIC_URL: "http://127.0.0.1",
        RATE_LIMIT_IP_BURST: "1000",
      });
      try {
        const client = new Client(server.url, mode, { origin: "http://127.0.0.1" });
        const email = `unverified-${mode}@example.test`;
        const noEmail = await client.register(`noemail-${mode}`, PASSWORD);
        expect(noEmail.status).toBe(422);
        expect(noEmail.body.details).toEqual([{ field: "email", message: "An email address is required (REQUIRE_EMAIL_VERIFICATION=true)." }]);

        const registered = await client.register(`unverified-${mode}`, PASSWORD, email);
        expect(registered.status).toBe(201);
        expect(registered.body.message).toBe("Account created. Confirm your email address with the code or link we sent, then sign in.");
        expect(registered.body.user.email_verified).toBe(false);
        expect(registered.body.access_token).toBeUndefined();
        expect(Object.keys(registered.cookies)).toEqual([]);
        expect(registered.headers.get("token")).toBeNull();

        const wrong = await client.login(email, "not the password");
        expect(wrong.status).toBe(401);
        expect(wrong.body.error).toBe("invalid_credentials");
        const right = await client.login(email, PASSWORD);
        expect(right.status).toBe(403);
        expect(right.body).toEqual({
          error: "user_not_verified",
          message: "The email address of this account is not verified yet: follow the link in the mail, or ask for a new one.",
        });
        const grant = await send(server.url, "POST", `${AUTH}/token`, { form: { grant_type: "password", username: email, password: PASSWORD } });
        expect(grant.status).toBe(403);
        expect(grant.body.error).toBe("user_not_verified");
        expect(grant.body.access_token).toBeUndefined();

        // Resend: the same 202 for this address and an unknown one (the address already had its mail this minute).
        const resend = await send(server.url, "POST", `${AUTH}/verify-email/resend`, { json: { email } });
        const unknown = await send(server.url, "POST", `${AUTH}/verify-email/resend`, { json: { email: `ghost-${mode}@example.test` } });
        expect(resend.status).toBe(202);
        expect(unknown.text).toBe(resend.text);

        const mail = await smtp.catcher.waitForMail(mailTo(email, "confirm your email"));
        const path = linkIn(mail, "/api/v1/auth/verify-email").replace("http://127.0.0.1", "");
        const page = await send(server.url, "GET", path);
        expect(page.status).toBe(200);
        expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
        expect(page.text).toContain("Your email address is verified.");
        const spent = await send(server.url, "GET", path);
        expect(spent.status).toBe(400);
        expect(spent.text).toContain("The link is wrong, already used or expired.");

        const signedIn = await client.login(email, PASSWORD);
        expect(signedIn.status).toBe(200);
        expect(signedIn.body.user.email_verified).toBe(true);
        expect((await client.me()).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
        removeDataDir(server.dataDir);
      }
    });
  }
});

describe("without mail", () => {
  test("the mail routes answer 403 mail_disabled, the forgot page says so, and the sign-in page offers no reset link", async () => {
    const server = await startServer({});
    try {
      for (const [path, json] of [
        ["/password/forgot", { email: "a@example.test" }],
        ["/verify-email/resend", { email: "a@example.test" }],
        ["/password/reset", { token: "x", new_password: NEW_PASSWORD }],
      ] as const) {
        const reply = await send(server.url, "POST", `${AUTH}${path}`, { json });
        expect(reply.status).toBe(403);
        expect(reply.body).toEqual({ error: "mail_disabled", message: "This server sends no mail (SMTP_URL is not set)." });
      }
      const page = await send(server.url, "GET", "/password/forgot");
      expect(page.status).toBe(404);
      expect(page.text).toContain("This server sends no mail");
      expect((await send(server.url, "GET", "/login")).text).not.toContain("Forgot your password?");
    } finally {
      expect(await server.stop()).toBe(0);
      removeDataDir(server.dataDir);
    }
  });
});
