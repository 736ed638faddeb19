// The graphql-inspector schema check (run by scripts/schema-check.sh in
// `make test`): compares the schema with the copy released last and fails
// on every breaking change that is not declared.
//
//   node tools/graphql/check.mjs <released.graphqls> <current.graphqls> <declared.txt>
//
// A declaration is one line `TYPE Path  why and how clients move on`, e.g.
//   FIELD_REMOVED Query.history  replaced by Query.entries in 2026-12; see docs/graphql.md
// where TYPE and Path are what this check prints for the change. Blank lines
// and lines starting with # are ignored. A declaration that matches no
// change fails the check too, so the list is emptied when a release is cut
// (the released copy is then replaced with the new schema).
import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import { diff, CriticalityLevel } from '@graphql-inspector/core';

const [released, current, declaredFile] = process.argv.slice(2);
if (!released || !current || !declaredFile) {
  console.error('usage: check.mjs <released.graphqls> <current.graphqls> <declared.txt>');
  process.exit(2);
}
const load = (f) => buildSchema(readFileSync(f, 'utf8'));
const declared = new Map();
for (const raw of readFileSync(declaredFile, 'utf8').split('\n')) {
  const line = raw.trim();
  if (line === '' || line.startsWith('#')) continue;
  const [type, path, ...why] = line.split(/\s+/);
  if (!path || why.length === 0) {
    console.error(`${declaredFile}: "${line}": write TYPE Path and why (e.g. FIELD_REMOVED Query.history  replaced by ...)`);
    process.exit(1);
  }
  declared.set(`${type} ${path}`, false);
}

const changes = await diff(load(released), load(current));
const key = (c) => `${c.type} ${c.path ?? ''}`;
const undeclared = [];
let breaking = 0, dangerous = 0, safe = 0;
for (const c of changes) {
  switch (c.criticality.level) {
    case CriticalityLevel.Breaking:
      breaking++;
      if (declared.has(key(c))) {
        declared.set(key(c), true);
        console.log(`declared breaking change: ${key(c)}: ${c.message}`);
      } else {
        undeclared.push(c);
      }
      break;
    case CriticalityLevel.Dangerous:
      dangerous++;
      console.log(`dangerous (allowed): ${key(c)}: ${c.message}${c.criticality.reason ? ` (${c.criticality.reason})` : ''}`);
      break;
    default:
      safe++;
  }
}
let failed = false;
for (const c of undeclared) {
  failed = true;
  console.error(`BREAKING: ${key(c)}: ${c.message}`);
  if (c.criticality.reason) console.error(`  ${c.criticality.reason}`);
}
if (undeclared.length > 0) {
  console.error(`\n${undeclared.length} undeclared breaking change(s) against ${released}. Make the change compatible ` +
    `(deprecate, add instead of change), or declare it in ${declaredFile} as "TYPE Path  why".`);
}
for (const [k, used] of declared) {
  if (!used) {
    failed = true;
    console.error(`declared but not found: ${k} (remove it from ${declaredFile})`);
  }
}
console.log(`schema check: ${breaking} breaking (${breaking - undeclared.length} declared), ${dangerous} dangerous, ${safe} safe change(s) against ${released}`);
process.exit(failed ? 1 : 0);
