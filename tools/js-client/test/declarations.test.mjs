// The hand-kept declarations (src/*.d.ts) against the modules they declare, and a client written
// against them compiled by TypeScript: a renamed export or a loosened type fails here.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

import ts from "typescript";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

const NAMES = ["index", "connection-manager", "order-books", "msgpack"];
// One program for every declaration file: each program loads TypeScript's DOM library again.
const declarations = NAMES.map((name) => join(ROOT, "src", `${name}.d.ts`));
const program = ts.createProgram(declarations, { strict: true, lib: ["lib.es2022.d.ts", "lib.dom.d.ts"], types: [] });
const checker = program.getTypeChecker();

function declaredValues(path) {
  const module = checker.getSymbolAtLocation(program.getSourceFile(path));
  const values = [];
  for (const symbol of checker.getExportsOfModule(module)) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
    if (target.flags & ts.SymbolFlags.Value) values.push(symbol.name);
  }
  return values.sort();
}

for (const name of NAMES) {
  test(`${name}.d.ts declares exactly the values ${name}.js exports`, async () => {
    const module = await import(join(ROOT, "src", `${name}.js`));
    assert.deepEqual(declaredValues(join(ROOT, "src", `${name}.d.ts`)), Object.keys(module).sort());
  });
}

test("a client written against the declarations compiles, and the mistakes it marks are caught", () => {
  const configPath = join(ROOT, "test", "typescript", "tsconfig.json");
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const client = ts.createProgram(config.fileNames, config.options);
  const problems = ts.getPreEmitDiagnostics(client).map((d) => {
    const where = d.file ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}: ` : "";
    return where + ts.flattenDiagnosticMessageText(d.messageText, "\n");
  });
  assert.deepEqual(problems, []);
});
