/**
 * The tables of the engine this process runs on, for the services to build queries with. SQLite's by default;
 * `useEngineTables("postgres")` swaps in schema-postgres.ts's twins once at start (src/server.ts, the CLI), before
 * any service is built. Both are typed as SQLite's: the services use only what drizzle offers on both engines
 * (select, insert, update, delete, awaited or run through db/atomic.ts), and test/unit/schema-twins.test.ts keeps
 * the columns, and so every query built from them, the same on both. So nothing may hold a table or a column in
 * a module-level constant: it would keep SQLite's. Build queries, and the column lists they select, in functions.
 */
import * as postgres from "./schema-postgres";
import * as sqlite from "./schema";

export let users = sqlite.users;
export let sessions = sqlite.sessions;
export let refreshTokens = sqlite.refreshTokens;
export let apiKeys = sqlite.apiKeys;
export let loginThrottles = sqlite.loginThrottles;
export let trustedSignIns = sqlite.trustedSignIns;
export let secondFactorFailures = sqlite.secondFactorFailures;
export let auditEvents = sqlite.auditEvents;
export let mailOutbox = sqlite.mailOutbox;
export let oneTimeCodes = sqlite.oneTimeCodes;
export let loginChallenges = sqlite.loginChallenges;
export let totpFactors = sqlite.totpFactors;
export let recoveryCodes = sqlite.recoveryCodes;
export let signingKeys = sqlite.signingKeys;
export let oidcClients = sqlite.oidcClients;
export let oidcConsents = sqlite.oidcConsents;
export let oidcCodes = sqlite.oidcCodes;
export let oidcGrants = sqlite.oidcGrants;

/** Binds the exports above to `to`'s tables (once, at start: a process runs on one engine). */
export function useEngineTables(to: "sqlite" | "postgres"): void {
  const schema = (to === "postgres" ? postgres : sqlite) as unknown as typeof sqlite;
  users = schema.users;
  sessions = schema.sessions;
  refreshTokens = schema.refreshTokens;
  apiKeys = schema.apiKeys;
  loginThrottles = schema.loginThrottles;
  trustedSignIns = schema.trustedSignIns;
  secondFactorFailures = schema.secondFactorFailures;
  auditEvents = schema.auditEvents;
  mailOutbox = schema.mailOutbox;
  oneTimeCodes = schema.oneTimeCodes;
  loginChallenges = schema.loginChallenges;
  totpFactors = schema.totpFactors;
  recoveryCodes = schema.recoveryCodes;
  signingKeys = schema.signingKeys;
  oidcClients = schema.oidcClients;
  oidcConsents = schema.oidcConsents;
  oidcCodes = schema.oidcCodes;
  oidcGrants = schema.oidcGrants;
}
