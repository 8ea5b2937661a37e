// The official TypeScript SDK v1 (@modelcontextprotocol/sdk) over Streamable
// HTTP, as most remote MCP hosts use it today: the API key goes in an
// `Authorization: Bearer` header through requestInit, the SDK runs the
// 2025-11-25 initialize handshake, and callTool validates each result's
// structured content against the tool's output schema with its own
// validator (so a schema the SDK cannot read, or a result that does not
// match it, fails here).
//
// It also connects once without a key, as a host with a missing or wrong
// configuration would, and expects the SDK to surface the server's 401; and
// calls cancel_order, which an orders:read key may not, and expects the
// server's 403 (insufficient_scope) to reach the caller as an HTTP error,
// not as a tool result.
//
// Environment (set by the driver): INTEROP_URL, INTEROP_API_KEY,
// INTEROP_CUSTOMER.

import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/sdk/types.js';
import { CANCEL_ARGS, env, expectOrderStatus, expectReadTools, expectRecentOrders, run } from './lib.mjs';

await run(async () => {
  const url = new URL(env('INTEROP_URL'));
  const key = env('INTEROP_API_KEY');
  const customer = env('INTEROP_CUSTOMER');

  const transport = new StreamableHTTPClientTransport(url, {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: 'order-mcp-interop-sdk-v1', version: '1.0.0' });
  await client.connect(transport);
  try {
    assert.equal(client.getServerVersion()?.name, 'order-status-mcp', 'serverInfo.name');
    assert.equal(transport.protocolVersion, LATEST_PROTOCOL_VERSION, 'negotiated protocol version');
    assert.equal(transport.sessionId, undefined, 'a stateless server hands out no session id');

    const tools = expectReadTools(await client.listTools());
    const orders = expectRecentOrders(
      await client.callTool({ name: 'list_recent_orders', arguments: { limit: 3 } }), customer, 3);
    const order = expectOrderStatus(
      await client.callTool({ name: 'get_order_status', arguments: { order_id: orders[0].order_id } }),
      orders[0].order_id);

    const cancel = await client.callTool({ name: 'cancel_order', arguments: CANCEL_ARGS }).then(
      (r) => { throw new Error(`cancel_order with an orders:read key returned ${JSON.stringify(r)}`); },
      (err) => err);
    assert.ok(cancel instanceof StreamableHTTPError && cancel.code === 403,
      `cancel_order with an orders:read key: expected HTTP 403, got ${cancel}`);

    const anonymous = await refusedWithoutKey(url);
    return [
      `negotiated ${transport.protocolVersion}; tools: ${tools.join(', ')}`,
      `list_recent_orders: ${orders.length} orders; get_order_status ${order.order_id}: ${order.status}`,
      `cancel_order without orders:cancel: refused with HTTP ${cancel.code}`,
      `without a key: ${anonymous}`,
    ];
  } finally {
    await client.close();
  }
});

// refusedWithoutKey connects with no credential and returns how the SDK
// reported the refusal; anything but a 401 is a failure.
async function refusedWithoutKey(url) {
  const client = new Client({ name: 'order-mcp-interop-sdk-v1-anonymous', version: '1.0.0' });
  try {
    await client.connect(new StreamableHTTPClientTransport(url));
  } catch (err) {
    assert.ok(err instanceof StreamableHTTPError, `expected a StreamableHTTPError, got ${err}`);
    assert.equal(err.code, 401, `status without a key: ${err.message}`);
    return `refused with HTTP ${err.code}`;
  } finally {
    await client.close();
  }
  throw new Error('the server accepted a connection without a key');
}
