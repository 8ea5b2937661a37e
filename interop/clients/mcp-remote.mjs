// mcp-remote as a stdio <-> Streamable HTTP bridge, the way a stdio-only
// desktop host reaches a remote server: the host launches mcp-remote as its
// "server" and speaks stdio to it; mcp-remote speaks HTTP to us. The host
// here is the official TypeScript SDK v1 stdio client.
//
// The credential is configured exactly as mcp-remote's README documents
// for hosts that mangle spaces in arguments: the argument is the literal
// text `Authorization:${AUTH_HEADER}` and the host's `env` block holds
// AUTH_HEADER="Bearer <key>"; mcp-remote substitutes it itself (no shell is
// involved). Plain http:// is accepted for 127.0.0.1 and localhost without
// `--allow-http`, which mcp-remote needs only for other hosts.
//
// Usage: node mcp-remote.mjs [legacy|auto]: the mcp-remote `--protocol`
// mode. `legacy` (its default) passes the host's 2025-11-25 initialize
// through; `auto` probes with server/discover and, since this server speaks
// 2026-07-28, answers the host's handshake itself and rewrites every later
// request into the sessionless protocol.
//
// Environment (set by the driver): INTEROP_URL, INTEROP_API_KEY,
// INTEROP_CUSTOMER, and HOME (mcp-remote keeps state under ~/.mcp-auth).

import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { env, expectOrderStatus, expectReadTools, expectRecentOrders, run } from './lib.mjs';

const protocol = process.argv[2] ?? 'legacy';
assert.ok(['legacy', 'auto'].includes(protocol), `unknown mode ${protocol}`);

// The pinned mcp-remote's own entry point (what `npx mcp-remote` runs),
// started with the Node running this script.
const require = createRequire(import.meta.url);
const pkg = require.resolve('mcp-remote/package.json');
const proxy = path.join(path.dirname(pkg), require(pkg).bin['mcp-remote']);

await run(async () => {
  const customer = env('INTEROP_CUSTOMER');
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [proxy, env('INTEROP_URL'),
      '--header', 'Authorization:${AUTH_HEADER}',
      '--transport', 'http-only',
      '--protocol', protocol],
    env: { AUTH_HEADER: `Bearer ${env('INTEROP_API_KEY')}` },
    stderr: 'pipe', // mcp-remote's log: copied to this client's log, and read below
  });
  let log = '';
  transport.stderr.on('data', (chunk) => {
    log += chunk;
    process.stderr.write(chunk);
  });
  const client = new Client({ name: `order-mcp-interop-mcp-remote-${protocol}`, version: '1.0.0' });
  await client.connect(transport);
  try {
    assert.equal(client.getServerVersion()?.name, 'order-status-mcp', 'serverInfo.name through the bridge');
    if (protocol === 'auto') {
      // mcp-remote says in its log which era it chose; nothing else shows
      // it to the host, which always sees a 2025-11-25 handshake.
      assert.match(log, /speaks MCP 2026-07-28/, 'mcp-remote --protocol auto bridges to 2026-07-28');
    }
    const tools = expectReadTools(await client.listTools());
    const orders = expectRecentOrders(
      await client.callTool({ name: 'list_recent_orders', arguments: { limit: 3 } }), customer, 3);
    const order = expectOrderStatus(
      await client.callTool({ name: 'get_order_status', arguments: { order_id: orders[0].order_id } }),
      orders[0].order_id);
    return [
      `mcp-remote --protocol ${protocol}${protocol === 'auto' ? ' (bridged to 2026-07-28)' : ''}; tools: ${tools.join(', ')}`,
      `list_recent_orders: ${orders.length} orders; get_order_status ${order.order_id}: ${order.status}`,
    ];
  } finally {
    await client.close();
  }
});
