// The official TypeScript SDK v2 (@modelcontextprotocol/client) over
// Streamable HTTP with the API key as a bearer header. v2 speaks the
// sessionless 2026-07-28 protocol when asked to negotiate: with
// `versionNegotiation: { mode: 'auto' }` it probes with server/discover and
// then attaches the per-request _meta envelope and the Mcp-Method /
// Mcp-Name headers to every call, which this server checks. The client
// must end up on 2026-07-28 (the newest version both sides speak), not fall
// back to the 2025 initialize handshake.
//
// Environment (set by the driver): INTEROP_URL, INTEROP_API_KEY,
// INTEROP_CUSTOMER.

import assert from 'node:assert/strict';
import { Client, InsufficientScopeError, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CANCEL_ARGS, env, expectOrderStatus, expectReadTools, expectRecentOrders, run } from './lib.mjs';

const MODERN = '2026-07-28';

await run(async () => {
  const customer = env('INTEROP_CUSTOMER');
  const transport = new StreamableHTTPClientTransport(new URL(env('INTEROP_URL')), {
    requestInit: { headers: { Authorization: `Bearer ${env('INTEROP_API_KEY')}` } },
  });
  const client = new Client(
    { name: 'order-mcp-interop-sdk-v2', version: '1.0.0' },
    { versionNegotiation: { mode: 'auto' } },
  );
  await client.connect(transport);
  try {
    // (The SDK's exported SUPPORTED_PROTOCOL_VERSIONS lists only the 2025
    // era; 2026-07-28 is reached through negotiation, so it is asserted
    // here rather than looked up.)
    const negotiated = client.getNegotiatedProtocolVersion();
    assert.equal(negotiated, MODERN, 'negotiated protocol version');
    assert.equal(client.getProtocolEra(), 'modern', 'protocol era');
    const tools = expectReadTools(await client.listTools());
    const orders = expectRecentOrders(
      await client.callTool({ name: 'list_recent_orders', arguments: { limit: 3 } }), customer, 3);
    const order = expectOrderStatus(
      await client.callTool({ name: 'get_order_status', arguments: { order_id: orders[0].order_id } }),
      orders[0].order_id);
    const cancel = await client.callTool({ name: 'cancel_order', arguments: CANCEL_ARGS }).then(
      (r) => { throw new Error(`cancel_order with an orders:read key returned ${JSON.stringify(r)}`); },
      (err) => err);
    assert.ok(cancel instanceof InsufficientScopeError, `cancel_order with an orders:read key: expected InsufficientScopeError, got ${cancel}`);
    assert.match(cancel.message, /orders:cancel/, 'the refusal names the missing scope');
    return [
      `negotiated ${negotiated} (${client.getProtocolEra()} era, through server/discover)`,
      `tools: ${tools.join(', ')}`,
      `list_recent_orders: ${orders.length} orders; get_order_status ${order.order_id}: ${order.status}`,
      `cancel_order without orders:cancel: ${cancel.message}`,
    ];
  } finally {
    await client.close();
  }
});
