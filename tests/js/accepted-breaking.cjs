// A graphql-inspector rule (`diff --rule accepted-breaking.cjs`): the breaking changes listed in
// schema.breaking.txt (or the file SCHEMA_BREAKING_ACCEPTED names) are reported as dangerous
// instead, with the reason given there; every other breaking change still fails the diff.
const fs = require('node:fs');
const path = require('node:path');

// Matched without quotes: the CLI's log shows the messages with their quotes as bold.
const plain = (message) => message.replace(/['"]/g, '').trim();
const file = process.env.SCHEMA_BREAKING_ACCEPTED || path.join(__dirname, '..', '..', 'schema.breaking.txt');

function accepted() {
  const reasons = new Map();
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [message, ...why] = line.split(' # ');
    reasons.set(plain(message), why.join(' # ').trim());
  }
  return reasons;
}

module.exports = ({ changes }) => {
  const reasons = accepted();
  return changes.map((change) => {
    if (change.criticality.level !== 'BREAKING' || !reasons.has(plain(change.message))) return change;
    return { ...change, criticality: { level: 'DANGEROUS', reason: `accepted: ${reasons.get(plain(change.message)) || 'listed in schema.breaking.txt'}` } };
  });
};
