// Parses an AsyncAPI document (a path, or stdin when none) with @asyncapi/parser and prints
// every diagnostic. Exits 1 when the parser reports an error or gives no document.
import { readFile } from 'node:fs/promises';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';

const source = process.argv[2];
const text = source ? await readFile(source, 'utf8') : await readStdin();
const { document, diagnostics } = await new Parser().parse(text, source ? { source } : {});

const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
const counts = { error: 0, warning: 0, info: 0, hint: 0 };
for (const diagnostic of diagnostics) {
  const severity = names[diagnostic.severity] ?? 'error';
  counts[severity] += 1;
  const where = diagnostic.path.length ? ` at /${diagnostic.path.join('/')}` : '';
  console.log(`${severity}: ${diagnostic.code}: ${diagnostic.message}${where}`);
}
const failed = counts.error > 0 || document === undefined;
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
const notes = plural(counts.warning, 'warning') + (counts.info + counts.hint ? `, ${plural(counts.info + counts.hint, 'note')}` : '');
console.log(failed ? `AsyncAPI parser: invalid, ${plural(counts.error, 'error')}, ${notes}` : `AsyncAPI parser: valid, ${notes}`);
process.exitCode = failed ? 1 : 0;

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
