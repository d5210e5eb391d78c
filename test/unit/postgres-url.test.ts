/** Issue 22: which postgres:// URLs carry their user and password intact (lib/postgres-url.ts), as a corpus. */
import { expect, test } from "bun:test";
import { credentialsIntact } from "../../src/lib/postgres-url";

const parse = (raw: string) => {
  try {
    return new URL(raw);
  } catch {
    return undefined;
  }
};
const intact = (raw: string) => credentialsIntact(raw, parse(raw));

test.each([
  "postgres://latchkey@db:5432/latchkey",
  "postgres://latchkey:hunter2@db:5432/latchkey",
  "postgresql://latchkey:a:b:c@db/latchkey", // ':' after the first one belongs to the password
  `postgres://latchkey:${encodeURIComponent("Quokka@Zebra/Ocelot#Lynx:Marmot?Tapir%")}@db:5432/latchkey`,
  "postgres://latchkey:p@[::1]:5432/latchkey?sslmode=require",
  "postgres://db/latchkey",
])("accepted: %s", (raw) => {
  expect(intact(raw)).toBe(true);
});

test.each([
  "postgres://latchkey:Quokka@Zebra@db:5432/latchkey", // two '@': postgres.js would dial "Zebra@db"
  "postgres://latchkey:5432/Ocelot@db:5432/latchkey", // '/' ends the host early: "latchkey" port 5432, '@' in the path
  "postgres://latchkey:12?x@db/latchkey", // '?' ends it: '@' in the query
  "postgres://latchkey:Lynx#1@db/latchkey", // '#': a fragment
  "postgres://latchkey@db/latchkey#", // an empty fragment is still one
  "postgres://latchkey:Quokka%zz@db/latchkey", // a '%' that does not decode
  "postgres://latchkey:Quokka%@db/latchkey",
])("refused: %s", (raw) => {
  expect(intact(raw)).toBe(false);
});
