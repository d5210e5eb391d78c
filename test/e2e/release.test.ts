/**
 * Issue 14: `make release` (a prerequisite of `make test`) cross-compiles five binaries into dist/release/. Each
 * one that can run here names its target in --version and serves /health on an empty data folder: the x64 ones
 * natively, the arm64 one under qemu-user-static with Debian's arm64 glibc (libc6-arm64-cross), the x64 musl one
 * under Debian's musl loader (below). Both musl ones also have their ELF headers checked (musl loader, machine,
 * needed libraries): the arm64 musl one can run nowhere here. SHA256SUMS matches the files.
 * Issue 22: each binary is also packed in latchkey-VERSION-linux-ARCH.tar.gz with LICENSE, README.md, CHANGELOG.md
 * and examples/ (the systemd units); the SBOM is valid CycloneDX naming the bundled packages.
 */
import { describe, expect, test } from "bun:test";
import { Spec, Validation } from "@cyclonedx/cyclonedx-library";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, owners, removeDataDir, spawnServer, tempDataDir } from "../support/server";

const RELEASE = resolve(import.meta.dir, "../../dist/release");
const VERSION: string = (await Bun.file(resolve(import.meta.dir, "../../package.json")).json()).version;
const QEMU_ARM64 = ["qemu-aarch64-static", "-L", "/usr/aarch64-linux-gnu"];
const MUSL_X64_LOADER = "/lib/ld-musl-x86_64.so.1";
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const ROOT = resolve(import.meta.dir, "../..");
const TARGETS = ["linux-x64", "linux-x64-baseline", "linux-arm64", "linux-x64-musl", "linux-arm64-musl"];
const archiveName = (target: string) => `latchkey-${VERSION}-${target}.tar.gz`;

function binary(target: string): string {
  const path = join(RELEASE, `latchkey-${target}`);
  if (!existsSync(path)) throw new Error(`${path} is missing: run make release (make test does)`);
  return path;
}

/** The fields of an ELF file that decide where it runs: machine, program interpreter, needed libraries. */
function elf(path: string) {
  const file = readFileSync(path);
  expect(file.subarray(0, 4).toString("latin1")).toBe("\x7fELF");
  expect(file[4]).toBe(2); // 64-bit
  expect(file[5]).toBe(1); // little-endian
  const machine = file.readUInt16LE(18);
  const phoff = Number(file.readBigUInt64LE(32));
  const phentsize = file.readUInt16LE(54);
  const phnum = file.readUInt16LE(56);
  let interpreter = "";
  let dynamic: [number, number] | undefined;
  const loads: [bigint, bigint][] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    const type = file.readUInt32LE(at);
    const offset = Number(file.readBigUInt64LE(at + 8));
    const size = Number(file.readBigUInt64LE(at + 32));
    if (type === 3) interpreter = file.subarray(offset, offset + size).toString("latin1").replace(/\0+$/, "");
    if (type === 2) dynamic = [offset, size];
    if (type === 1) loads.push([file.readBigUInt64LE(at + 16), file.readBigUInt64LE(at + 8)]); // vaddr, offset
  }
  // DT_NEEDED entries are offsets into DT_STRTAB, which is a virtual address: map it through the PT_LOADs.
  const needed: number[] = [];
  let strtab = 0n;
  for (let at = dynamic![0]; at < dynamic![0] + dynamic![1]; at += 16) {
    const tag = file.readBigUInt64LE(at);
    if (tag === 0n) break;
    if (tag === 1n) needed.push(Number(file.readBigUInt64LE(at + 8)));
    if (tag === 5n) strtab = file.readBigUInt64LE(at + 8);
  }
  const [vaddr, offset] = loads.filter(([address]) => address <= strtab).sort((a, b) => Number(b[0] - a[0]))[0]!;
  const strtabOffset = Number(strtab - vaddr + offset);
  const libraries = needed.map((name) => {
    const start = strtabOffset + name;
    return file.subarray(start, file.indexOf(0, start)).toString("latin1");
  });
  return { machine, interpreter, libraries: libraries.sort() };
}

async function servesHealth(command: string[]) {
  const dataDir = tempDataDir();
  const port = freePort();
  try {
    // Started as root like a container's default: the switch to uid 1000 runs on every target too.
    const server = await spawnServer([...command, "serve"], {
      env: { PATH: process.env.PATH ?? "", HOST: "127.0.0.1", PORT: String(port), DATA_DIR: dataDir, PUID: "" },
    });
    try {
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      expect({ status: health.status, body: await health.json() }).toMatchObject({ status: 200, body: { status: "ok" } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(existsSync(join(dataDir, "latchkey.db"))).toBe(true);
  } finally {
    removeDataDir(dataDir);
  }
}

async function version(command: string[]) {
  const proc = Bun.spawn(command.concat("--version"), { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH ?? "" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

describe("release binaries that run here", () => {
  const runnable: [string, string[]][] = [
    ["linux-x64", []],
    ["linux-x64-baseline", []],
    ["linux-arm64", QEMU_ARM64],
  ];
  for (const [target, prefix] of runnable) {
    test(`latchkey-${target}: --version names bun-${target}, and it serves /health on an empty data folder`, async () => {
      const command = [...prefix, binary(target)];
      expect(await version(command)).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`^latchkey ${VERSION} \\(bun-${target}, commit [0-9a-f]+\\)\n$`)), stderr: "" });
      await servesHealth(command);
    }, 120_000);
  }
});

/**
 * What an Alpine machine gives the x64 musl binary, from Debian's packages: musl's own loader and libc (`musl`),
 * and for the one other library it needs, libstdc++.so.6, Debian's build with its libgcc_s. Alpine's musl build of
 * libstdc++ is in no Debian package, so the test does what Alpine's gcompat does the other way round: the glibc
 * names libstdc++ asks for (libc.so.6, libm.so.6, ld-linux) point at musl, and a seven-symbol shim compiled with
 * `musl-gcc` (musl-tools) stands in for the glibc-only ones. Every libc call of the binary itself goes to musl.
 */
function muslX64Runtime(): { command: (binary: string) => string[]; [Symbol.dispose]: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-musl-"));
  for (const name of ["libc.musl-x86_64.so.1", "libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"]) symlinkSync(MUSL_X64_LOADER, join(dir, name));
  symlinkSync("/usr/lib/x86_64-linux-gnu/libstdc++.so.6", join(dir, "libstdc++.so.6"));
  symlinkSync("/lib/x86_64-linux-gnu/libgcc_s.so.1", join(dir, "libgcc_s.so.1"));
  const source = join(dir, "glibc-shim.c");
  writeFileSync(source, GLIBC_SHIM);
  const compiled = Bun.spawnSync(["musl-gcc", "-shared", "-fPIC", "-O2", "-o", join(dir, "glibc-shim.so"), source], { stderr: "pipe" });
  if (compiled.exitCode !== 0) throw new Error(`musl-gcc (Debian: apt-get install musl-tools) failed: ${compiled.stderr.toString()}`);
  return {
    command: (binary) => [MUSL_X64_LOADER, "--library-path", dir, "--preload", join(dir, "glibc-shim.so"), binary],
    [Symbol.dispose]: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The glibc-only symbols Debian's libstdc++ and libgcc_s import, in terms of musl (gcompat implements the same). */
const GLIBC_SHIM = `#define _GNU_SOURCE
#include <locale.h>
#include <stdint.h>
#include <sys/random.h>
#include <time.h>
char __libc_single_threaded = 0;
struct { unsigned int vendor, type, subtype, features[1]; } __cpu_model;
int __cpu_indicator_init(void) { return 0; }
int _dl_find_object(void *pc, void *result) { return -1; } /* "not found": the unwinder falls back to dl_iterate_phdr */
int __cxa_thread_atexit_impl(void (*dtor)(void *), void *obj, void *dso) { return 0; }
uint32_t arc4random(void) { uint32_t value; getrandom(&value, sizeof value, 0); return value; }
size_t __strftime_l(char *s, size_t max, const char *format, const struct tm *tm, locale_t locale) { return strftime_l(s, max, format, tm, locale); }
`;

describe("musl binaries (Alpine)", () => {
  test("latchkey-linux-x64-musl, under musl's loader: --version names bun-linux-x64-musl, and it serves /health on an empty data folder", async () => {
    using musl = muslX64Runtime();
    const command = musl.command(binary("linux-x64-musl"));
    expect(await version(command)).toEqual({ code: 0, stdout: expect.stringMatching(new RegExp(`^latchkey ${VERSION} \\(bun-linux-x64-musl, commit [0-9a-f]+\\)\n$`)), stderr: "" });
    await servesHealth(command);
  }, 120_000);

  test.each([
    ["linux-x64-musl", EM_X86_64, "/lib/ld-musl-x86_64.so.1", "libc.musl-x86_64.so.1"],
    ["linux-arm64-musl", EM_AARCH64, "/lib/ld-musl-aarch64.so.1", "libc.musl-aarch64.so.1"],
  ])("latchkey-%s: built for its machine, loaded by musl, needing only musl and libstdc++", (target, machine, interpreter, libc) => {
    expect(elf(binary(target))).toEqual({ machine, interpreter, libraries: [libc, "libstdc++.so.6"].sort() });
  });

  test("the glibc ones are not musl: the check tells them apart", () => {
    expect(elf(binary("linux-x64")).interpreter).toBe("/lib64/ld-linux-x86-64.so.2");
    expect(elf(binary("linux-arm64")).interpreter).toBe("/lib/ld-linux-aarch64.so.1");
  });
});

test("SHA256SUMS lists the five binaries, their archives and the SBOM with their SHA-256, as sha256sum -c reads it", () => {
  const lines = readFileSync(join(RELEASE, "SHA256SUMS"), "utf8").trimEnd().split("\n");
  const listed = lines.map((line) => {
    const [hash, name] = line.split("  ");
    return { name, hash };
  });
  const files = [...TARGETS.map((target) => `latchkey-${target}`), ...TARGETS.map(archiveName), `latchkey-${VERSION}.cdx.json`];
  expect(listed.map(({ name }) => name).sort()).toEqual(files.sort());
  for (const { name, hash } of listed)
    expect(`${name} ${hash}`).toBe(`${name} ${new Bun.CryptoHasher("sha256").update(readFileSync(join(RELEASE, name!))).digest("hex")}`);
});

/** Every file under dir, relative to it, sorted. */
function filesUnder(dir: string, prefix = ""): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? filesUnder(dir, join(prefix, entry.name)) : [join(prefix, entry.name)]))
    .sort();
}

describe("the release archives", () => {
  test("LICENSE at the root is MIT, the Latchkey authors' of 2026, and package.json names it", async () => {
    const license = readFileSync(join(ROOT, "LICENSE"), "utf8");
    expect(license.split("\n").slice(0, 3)).toEqual(["MIT License", "", "Copyright (c) 2026 the Latchkey authors"]);
    expect(license).toContain("THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND");
    expect((await Bun.file(join(ROOT, "package.json")).json()).license).toBe("MIT");
  });

  test.each(TARGETS)("latchkey-VERSION-%s.tar.gz: one folder with the binary, LICENSE, README, CHANGELOG and examples, owned by root", (target) => {
    const folder = archiveName(target).replace(/\.tar\.gz$/, "");
    const unpacked = mkdtempSync(join(tmpdir(), "latchkey-archive-"));
    try {
      // --same-owner: the owners recorded in the archive, whoever unpacks it.
      expect(Bun.spawnSync(["tar", "--same-owner", "-xzf", join(RELEASE, archiveName(target)), "-C", unpacked]).exitCode).toBe(0);
      expect(readdirSync(unpacked)).toEqual([folder]);
      const inside = join(unpacked, folder);
      expect(new Set(Object.values(owners(inside)))).toEqual(new Set(["0:0"]));
      const examples = filesUnder(join(ROOT, "examples")).map((file) => `examples/${file}`);
      expect(filesUnder(inside)).toEqual(["CHANGELOG.md", "LICENSE", "README.md", ...examples, "latchkey"].sort());
      expect(examples).toContain("examples/latchkey.service");
      expect(examples).toContain("examples/packaged/latchkey.service");
      for (const file of ["LICENSE", "README.md", "CHANGELOG.md", ...examples]) expect(`${file}: ${readFileSync(join(inside, file), "utf8") === readFileSync(join(ROOT, file), "utf8")}`).toBe(`${file}: true`);
      expect(readFileSync(join(inside, "latchkey")).equals(readFileSync(binary(target)))).toBe(true);
      expect(statSync(join(inside, "latchkey")).mode & 0o777).toBe(0o755);
    } finally {
      rmSync(unpacked, { recursive: true, force: true });
    }
  }, 60_000);

  test("CHANGELOG.md keeps a changelog: an Unreleased section, then this version's", () => {
    const headings = readFileSync(join(ROOT, "CHANGELOG.md"), "utf8").split("\n").filter((line) => line.startsWith("## "));
    expect(headings[0]).toBe("## [Unreleased]");
    expect(headings).toContainEqual(expect.stringMatching(new RegExp(`^## \\[${VERSION.replaceAll(".", "\\.")}\\] - \\d{4}-\\d{2}-\\d{2}$`)));
  });
});

describe("the SBOM (latchkey-VERSION.cdx.json)", () => {
  const text = () => readFileSync(join(RELEASE, `latchkey-${VERSION}.cdx.json`), "utf8");
  const installed = (name: string): string => JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")).version;

  test("is valid CycloneDX 1.6 JSON by the CycloneDX schema (and the check can fail)", async () => {
    const validator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
    expect(await validator.validate(text())).toBeNull();
    const broken = JSON.parse(text());
    broken.components[0].purl = 42;
    expect(await validator.validate(JSON.stringify(broken))).not.toBeNull();
  });

  test("describes Latchkey at this version under MIT, and lists every runtime dependency at its installed version, no build tool", async () => {
    const bom = JSON.parse(text());
    const manifest = await Bun.file(join(ROOT, "package.json")).json();
    expect({ format: bom.bomFormat, spec: bom.specVersion, name: bom.metadata.component.name, version: bom.metadata.component.version })
      .toEqual({ format: "CycloneDX", spec: "1.6", name: "latchkey", version: VERSION });
    expect(bom.metadata.component.licenses).toEqual([{ license: { id: "MIT", acknowledgement: "declared" } }]);
    const purls = new Set<string>(bom.components.map((component: { purl: string }) => component.purl));
    expect([...purls]).toContain(`pkg:npm/elysia@${installed("elysia")}`);
    for (const name of Object.keys(manifest.dependencies))
      expect([...purls].some((purl) => purl.startsWith(`pkg:npm/${name.replace("@", "%40")}@${installed(name)}`))).toBe(true);
    for (const name of ["drizzle-kit", "playwright-core", "knip", "@cyclonedx/cyclonedx-npm"])
      expect([...purls].filter((purl) => purl.startsWith(`pkg:npm/${name.replace("@", "%40")}@`))).toEqual([]);
  });
});

/** The file offset of an ELF section, by name (section header table, then its string table). */
function sectionOffset(file: Buffer, name: string): number {
  const shoff = Number(file.readBigUInt64LE(40));
  const [shentsize, shnum, shstrndx] = [file.readUInt16LE(58), file.readUInt16LE(60), file.readUInt16LE(62)];
  const header = (index: number) => shoff + index * shentsize;
  const names = Number(file.readBigUInt64LE(header(shstrndx) + 24));
  for (let index = 0; index < shnum; index++) {
    const start = names + file.readUInt32LE(header(index));
    if (file.subarray(start, file.indexOf(0, start)).toString("latin1") === name) return Number(file.readBigUInt64LE(header(index) + 24));
  }
  throw new Error(`no ${name} section`);
}

test("x64 and x64-baseline carry the same Bun runtime (README): every byte before the embedded application (.bun) is equal", () => {
  const [x64, baseline] = [readFileSync(binary("linux-x64")), readFileSync(binary("linux-x64-baseline"))];
  const application = sectionOffset(x64, ".bun");
  expect(sectionOffset(baseline, ".bun")).toBe(application);
  expect(application).toBeGreaterThan(50_000_000);
  expect(x64.subarray(0, application).equals(baseline.subarray(0, application))).toBe(true);
  // The applications differ (each names its target in --version): the comparison sees a difference where one is.
  expect(x64.subarray(application).equals(baseline.subarray(application))).toBe(false);
});

test("strip turns the binary into plain Bun (README: packagers must not strip it)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "latchkey-strip-"));
  try {
    const stripped = join(dir, "latchkey");
    expect(Bun.spawnSync(["strip", "-o", stripped, binary("linux-x64")], { stderr: "pipe" }).exitCode).toBe(0);
    const bunVersion = readFileSync(join(ROOT, "Makefile"), "utf8").match(/^BUN_VERSION := (.+)$/m)![1];
    expect(await version([binary("linux-x64")])).toMatchObject({ code: 0, stdout: `latchkey ${VERSION} (bun-linux-x64)\n` });
    expect(await version([stripped])).toEqual({ code: 0, stdout: `${bunVersion}\n`, stderr: "" });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
