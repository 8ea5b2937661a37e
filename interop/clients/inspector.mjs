// The MCP Inspector's command-line mode (`mcp-inspector --cli`) against the
// HTTP endpoint, the tool people reach for first to poke at a server. It
// runs on Node >= 22.19, so the driver starts this script with the Node 22
// installed from npm in ../node22, and the Inspector runs on that same Node.
//
// For each protocol era the Inspector can speak (`legacy`: the 2025-11-25
// initialize handshake, its default for an ad-hoc URL; `modern`: the
// sessionless 2026-07-28), it lists the tools with `--strict` and calls
// list_recent_orders and get_order_status, with the key passed as the
// Inspector documents: `--header "Authorization: Bearer <key>"`.
//
// `--strict` makes the Inspector report its tool-schema portability
// findings in full on stderr, and exit 6 when one is error-severity (a
// failure here). Warnings do not fail the run; they are printed in the
// summary (and in full in the log) so that schema changes show up.
//
// Environment (set by the driver): INTEROP_URL, INTEROP_API_KEY,
// INTEROP_CUSTOMER, and HOME (the Inspector keeps state under
// ~/.mcp-inspector).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { env, expectOrderStatus, expectReadTools, expectRecentOrders, run } from './lib.mjs';

const require = createRequire(path.resolve(import.meta.dirname, '../node22/package.json'));
const pkg = require.resolve('@modelcontextprotocol/inspector/package.json');
const inspector = path.join(path.dirname(pkg), require(pkg).bin['mcp-inspector']);

await run(async () => {
  const url = env('INTEROP_URL');
  const key = env('INTEROP_API_KEY');
  const customer = env('INTEROP_CUSTOMER');

  // cli runs one Inspector command and returns its parsed JSON output and
  // its stderr; a non-zero exit is a failure.
  const cli = (era, ...args) => {
    const argv = [inspector, '--cli', url, '--transport', 'http',
      '--header', `Authorization: Bearer ${key}`, '--protocol-era', era, ...args];
    const r = spawnSync(process.execPath, argv, { encoding: 'utf8', timeout: 30_000 });
    const shown = argv.slice(1).map((a) => a.replace(key, '<key>')).join(' ');
    process.stderr.write(`$ mcp-inspector ${shown}\n${r.stderr}`);
    if (r.error) throw new Error(`mcp-inspector ${shown}: ${r.error.message}`);
    assert.equal(r.status, 0, `mcp-inspector ${shown} exited ${r.status}: ${r.stderr.trim()}`);
    return { out: JSON.parse(r.stdout), stderr: r.stderr };
  };

  const lines = [];
  for (const era of ['legacy', 'modern']) {
    const list = cli(era, '--method', 'tools/list', '--strict');
    const tools = expectReadTools(list.out);
    const orders = expectRecentOrders(
      cli(era, '--method', 'tools/call', '--tool-name', 'list_recent_orders', '--tool-arg', 'limit=3').out,
      customer, 3);
    const order = expectOrderStatus(
      cli(era, '--method', 'tools/call', '--tool-name', 'get_order_status',
        '--tool-arg', `order_id=${orders[0].order_id}`).out,
      orders[0].order_id);
    lines.push(`--protocol-era ${era}: tools ${tools.join(', ')}; ${orders.length} orders; ${order.order_id}: ${order.status}`);
    lines.push(...portability(list.stderr).map((l) => `  ${era}: ${l}`));
  }
  return lines;
});

// portability condenses the `--strict` report: one line per finding (its
// severity, tool, path, and the first sentence of the issue), then the
// Inspector's own count.
function portability(stderr) {
  const findings = [];
  const re = /^(Warning|Error): tool "([^"]+)"\n\s+Path: (.+)\n\s+Issue: ([^\n]*?\.)(?= |\n|$)/gm;
  for (const m of stderr.matchAll(re)) {
    findings.push(`schema portability ${m[1].toLowerCase()}: ${m[2]} ${m[3]}: ${m[4]}`);
  }
  const count = stderr.match(/^.*\d+ errors?, \d+ warnings? across .*$/m);
  if (count) findings.push(`schema portability: ${count[0].trim()}`);
  return findings;
}
