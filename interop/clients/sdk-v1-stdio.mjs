// The official TypeScript SDK v1 over stdio, launching `server stdio` the
// way a desktop host (Claude Desktop and the like) does: a command, its
// arguments, and an `env` block holding only the server's own variables.
// The SDK adds a short list of variables it deems safe to inherit (HOME,
// PATH, and USER, SHELL, TERM, LOGNAME where the host has them; the driver
// starts this client with only PATH and HOME), so the server sees a
// minimal environment and must find everything it needs in those
// variables: this catches a server that quietly depends on something a
// developer's shell happens to export.
//
// Environment (set by the driver): INTEROP_SERVER (the binary),
// INTEROP_SERVER_ENV (a JSON object: the server's own variables, e.g.
// DATABASE_URL and AUDIT_HMAC_KEY), INTEROP_API_KEY (becomes MCP_API_KEY),
// INTEROP_CUSTOMER.

import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { env, expectOrderStatus, expectReadTools, expectRecentOrders, run, serverEnv } from './lib.mjs';

await run(async () => {
  const customer = env('INTEROP_CUSTOMER');
  const transport = new StdioClientTransport({
    command: env('INTEROP_SERVER'),
    args: ['stdio'],
    env: { ...serverEnv(), MCP_API_KEY: env('INTEROP_API_KEY') },
    stderr: 'inherit', // the server's JSON log lines land in this client's log
  });
  const client = new Client({ name: 'order-mcp-interop-sdk-v1-stdio', version: '1.0.0' });
  await client.connect(transport);
  try {
    assert.equal(client.getServerVersion()?.name, 'order-status-mcp', 'serverInfo.name');
    const tools = expectReadTools(await client.listTools());
    const orders = expectRecentOrders(
      await client.callTool({ name: 'list_recent_orders', arguments: { limit: 2 } }), customer, 2);
    const order = expectOrderStatus(
      await client.callTool({ name: 'get_order_status', arguments: { order_id: orders[0].order_id } }),
      orders[0].order_id);
    return [
      `server pid ${transport.pid}; tools: ${tools.join(', ')}`,
      `list_recent_orders: ${orders.length} orders; get_order_status ${order.order_id}: ${order.status}`,
    ];
  } finally {
    await client.close();
  }
});
