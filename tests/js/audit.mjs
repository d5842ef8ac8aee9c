// graphql-http's server audit against a running livecart: every MUST and SHOULD must pass.
// Usage: node audit.mjs http://127.0.0.1:PORT/graphql
import { auditServer } from 'graphql-http';

const results = await auditServer({ url: process.argv[2] });
let failed = 0;
for (const result of results) {
  const level = result.name.split(' ')[0];
  const bad = result.status !== 'ok' && (level === 'MUST' || level === 'SHOULD');
  if (bad) failed += 1;
  console.log(`${bad ? 'FAIL' : result.status.padEnd(4)} ${result.id} ${result.name}${result.status === 'ok' ? '' : ': ' + result.reason}`);
}
console.log(`${results.length} audits, ${failed} MUST/SHOULD not met`);
process.exit(failed ? 1 : 0);
