/** Preloaded by bun test before the test files (bunfig.toml): after the last one, the suite's stops run (suite-end.ts). */
import { afterAll } from "bun:test";
import { runSuiteEnd } from "./suite-end";

afterAll(runSuiteEnd);
