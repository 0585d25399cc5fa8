// tvapp.d.ts checked by the TypeScript compiler from npm (tests/js/package.json pins it; `make test` runs `npm ci`
// here): a strict TypeScript consumer of the documented API (types/consumer.ts) compiles without error, and the
// names the declarations export as values are exactly the names tvapp.js exports (no missing or phantom export).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const SDK = join(here, "..", "..", "tvapp", "server", "web", "sdk");
const TSC = join(here, "node_modules", "typescript", "bin", "tsc");
const MISSING = "the TypeScript compiler is not installed: run `make js-deps` (npm ci in tests/js)";

function typescript() {
  assert.ok(existsSync(TSC), MISSING);
  return createRequire(import.meta.url)("typescript");
}

test("a strict TypeScript consumer of tvapp.d.ts compiles with tsc --noEmit --strict", () => {
  typescript();
  const result = spawnSync(process.execPath, [TSC, "--noEmit", "--strict", "-p", join(here, "tsconfig.json")],
    { encoding: "utf8", timeout: 120_000 });
  assert.equal(result.status, 0, `tsc found errors:\n${result.stdout}${result.stderr}`);
});

test("the pinned compiler is the one package.json names", async () => {
  const ts = typescript();
  const { default: pkg } = await import("./package.json", { with: { type: "json" } });
  assert.equal(ts.version, pkg.devDependencies.typescript);
});

test("tvapp.d.ts declares exactly the values tvapp.js exports", async () => {
  const ts = typescript();
  const file = join(SDK, "tvapp.d.ts");
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ["lib.es2022.d.ts", "lib.dom.d.ts"] });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file));
  const declared = checker.getExportsOfModule(module);
  const values = declared.filter((s) => s.flags & ts.SymbolFlags.Value).map((s) => s.name).sort();
  const types = declared.filter((s) => !(s.flags & ts.SymbolFlags.Value)).map((s) => s.name);
  const exported = Object.keys(await import(join(SDK, "tvapp.js"))).sort();
  assert.deepEqual(values, exported);
  assert.ok(types.includes("RoomEvents") && types.includes("ConnectOptions"), types.join(", "));
});

test("RoomEvents declares every event the SDK emits, and the SDK names every event RoomEvents declares", () => {
  const ts = typescript();
  const file = join(SDK, "tvapp.d.ts");
  const program = ts.createProgram([file], { strict: true, noEmit: true, types: [], lib: ["lib.es2022.d.ts", "lib.dom.d.ts"] });
  const checker = program.getTypeChecker();
  const module = checker.getSymbolAtLocation(program.getSourceFile(file));
  const events = checker.getExportsOfModule(module).find((s) => s.name === "RoomEvents");
  const declared = new Set(checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(events)).map((p) => p.name));
  const sources = readdirSync(SDK).filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(SDK, f), "utf8"));
  const emitted = new Set();
  for (const text of sources) {
    // The string literals before the first comma of each _emit(...): `_emit("data", ...)`, `_emit(m ? "a" : "b", ...)`.
    for (const call of text.matchAll(/_emit\(([^,]*),/g)) for (const m of call[1].matchAll(/"([a-z_]+)"/g)) emitted.add(m[1]);
  }
  assert.ok(emitted.size >= 15, [...emitted].join(", "));
  assert.deepEqual([...emitted].filter((name) => !declared.has(name)), [], "emitted but not in RoomEvents");
  const all = sources.join("\n");
  assert.deepEqual([...declared].filter((name) => !all.includes(`"${name}"`)), [], "in RoomEvents but never named");
});
