import { describe, expect, test } from "bun:test";
import { invitationState, invitationTokenHash, invitationVerdict, type Invitation } from "../../src/modules/invitations/service";
import { takesInvitationForm } from "../../src/modules/pages/invitations";

const NOW = new Date("2026-12-06T12:00:00Z");
const later = new Date(NOW.getTime() + 1000);
const invitation = (patch: Partial<Invitation> = {}): Invitation => ({
  id: "i",
  tokenHash: "h",
  email: null,
  mailed: false,
  roles: [],
  maxUses: 1,
  uses: 0,
  expiresAt: later,
  revokedAt: null,
  createdBy: null,
  createdAt: NOW,
  ...patch,
});

describe("the use decision", () => {
  test("usable while open, unexpired and under its uses", () => {
    expect(invitationVerdict(invitation(), NOW)).toBe("usable");
    expect(invitationVerdict(invitation({ maxUses: 3, uses: 2 }), NOW)).toBe("usable");
  });
  test("spent at its last use, never over it", () => {
    expect(invitationVerdict(invitation({ uses: 1 }), NOW)).toBe("spent");
    expect(invitationVerdict(invitation({ maxUses: 3, uses: 3 }), NOW)).toBe("spent");
    expect(invitationVerdict(invitation({ maxUses: 3, uses: 7 }), NOW)).toBe("spent");
  });
  test("expired at its expiry instant, not a millisecond later", () => {
    expect(invitationVerdict(invitation({ expiresAt: NOW }), NOW)).toBe("expired");
    expect(invitationVerdict(invitation({ expiresAt: new Date(NOW.getTime() - 1) }), NOW)).toBe("expired");
  });
  test("revoked wins over every other reason, spent over expired", () => {
    expect(invitationVerdict(invitation({ revokedAt: NOW, uses: 1, expiresAt: NOW }), NOW)).toBe("revoked");
    expect(invitationVerdict(invitation({ uses: 1, expiresAt: NOW }), NOW)).toBe("spent");
  });
  test("a value that cannot be compared refuses (fail closed)", () => {
    expect(invitationVerdict(invitation({ expiresAt: new Date(Number.NaN) }), NOW)).toBe("expired");
    expect(invitationVerdict(invitation({ uses: Number.NaN }), NOW)).toBe("spent");
    expect(invitationVerdict(invitation({ maxUses: Number.NaN }), NOW)).toBe("spent");
    expect(invitationVerdict(invitation(), new Date(Number.NaN))).toBe("expired");
  });
  test("the state an admin reads", () => {
    expect(invitationState(invitation(), NOW)).toBe("pending");
    expect(invitationState(invitation({ maxUses: 3, uses: 1 }), NOW)).toBe("used 1 of 3");
    expect(invitationState(invitation({ uses: 1 }), NOW)).toBe("used 1 of 1");
    expect(invitationState(invitation({ expiresAt: NOW }), NOW)).toBe("expired");
    expect(invitationState(invitation({ revokedAt: NOW }), NOW)).toBe("revoked");
  });
});

describe("the link token check", () => {
  const token = "a".repeat(43);
  test("a 43-character base64url token hashes to a SHA-256 hex digest, not to itself", () => {
    const hash = invitationTokenHash(token);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(invitationTokenHash("b".repeat(43))).not.toBe(hash);
    expect(invitationTokenHash(token)).toBe(hash!);
  });
  test("anything else is refused before a lookup", () => {
    for (const bad of ["", "a".repeat(42), "a".repeat(44), `${"a".repeat(42)}=`, `${"a".repeat(42)}/`, `${"a".repeat(42)}%`, `${"a".repeat(42)}\n`, "ａ".repeat(43)])
      expect({ bad, hash: invitationTokenHash(bad) }).toEqual({ bad, hash: undefined });
  });
});

test("form bodies are taken on the sign-up and invitation forms only", () => {
  for (const path of ["/signup", "/admin/invitations", "/admin/invitations/revoke", `/invite/${"a".repeat(43)}`]) expect({ path, form: takesInvitationForm(path) }).toEqual({ path, form: true });
  for (const path of ["/invite/", "/invite/a/b", "/api/v1/admin/invitations", "/signup/x", "/invitex/a"]) expect({ path, form: takesInvitationForm(path) }).toEqual({ path, form: false });
});
