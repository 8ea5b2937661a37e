// What every interop client expects of the server, in one place.
//
// The clients in this folder are other people's MCP clients (the official
// TypeScript SDKs, mcp-remote, the MCP Inspector) driven against the real
// server by the devenv interop driver. Each one connects its own way; once
// connected, they all ask the same questions and hold the answers to the
// same expectations, written here once:
//
//   - tools/list shows exactly the tools an orders:read key may use
//     (get_order_status and list_recent_orders; cancel_order needs
//     orders:cancel and must not even be listed), each with an output schema;
//   - list_recent_orders returns the key's own customer's orders, as
//     structured content, newest first, at most the limit asked for;
//   - get_order_status on one of those orders returns that order, with the
//     customer's contact data masked and no staff-only field.
//
// The driver passes everything through the environment (see env below) and
// reads the outcome from the exit status: 0 passed, anything else failed.
// Lines on stdout are what the driver shows under the client's PASS or
// FAIL line: a summary, or the reason it failed. stderr is for logs (the
// stdio server's and mcp-remote's land there too); the driver keeps it in
// the client's log file.

import assert from 'node:assert/strict';

// The tools a key with the orders:read scope may see, in the order the
// server lists them.
export const READ_TOOLS = ['get_order_status', 'list_recent_orders'];

const ORDER_ID = /^ord_[0-9A-HJKMNP-TV-Z]{16}$/;

// env returns the environment variable name, or stops the client when the
// driver did not set it (a usage error, not a server failure).
export function env(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: run this through the devenv interop driver (make interop)`);
    process.exit(2);
  }
  return value;
}

// serverEnv is the environment the driver wants a stdio server started with
// (DATABASE_URL, AUDIT_HMAC_KEY...), to which the caller adds MCP_API_KEY.
export function serverEnv() {
  return JSON.parse(env('INTEROP_SERVER_ENV'));
}

// expectReadTools checks a tools/list result: exactly the orders:read tools,
// each with an input and an output schema. It returns the names.
export function expectReadTools(result) {
  const names = result.tools.map((t) => t.name);
  assert.deepEqual(names, READ_TOOLS, `tools/list for an orders:read key: got ${names.join(', ')}`);
  for (const tool of result.tools) {
    assert.equal(tool.inputSchema?.type, 'object', `${tool.name}: inputSchema.type`);
    assert.equal(tool.outputSchema?.type, 'object', `${tool.name}: outputSchema.type`);
  }
  return names;
}

// expectRecentOrders checks a list_recent_orders result for a key bound to
// customer, called with {limit}, and returns the orders.
export function expectRecentOrders(result, customer, limit) {
  assert.notEqual(result.isError, true, `list_recent_orders failed: ${JSON.stringify(result.content)}`);
  const out = result.structuredContent;
  assert.ok(out, 'list_recent_orders returned no structuredContent');
  assert.equal(out.customer_id, customer, 'list_recent_orders: customer_id is the key\'s own customer');
  assert.equal(out.limit, limit, 'list_recent_orders: the limit applied');
  assert.ok(Array.isArray(out.orders) && out.orders.length > 0 && out.orders.length <= limit,
    `list_recent_orders: 1..${limit} orders, got ${JSON.stringify(out.orders)}`);
  for (const o of out.orders) {
    assert.match(o.order_id, ORDER_ID, 'list_recent_orders: opaque order id');
    assert.equal(typeof o.status, 'string');
    assert.equal(typeof o.total?.amount, 'string');
  }
  const placed = out.orders.map((o) => o.placed_at);
  assert.deepEqual(placed, [...placed].sort().reverse(), 'list_recent_orders: newest first');
  // The text content carries the same object, for clients that ignore
  // structured content.
  const text = result.content.find((c) => c.type === 'text');
  assert.deepEqual(JSON.parse(text.text), out, 'list_recent_orders: text content mirrors structuredContent');
  return out.orders;
}

// expectOrderStatus checks a get_order_status result for orderId.
export function expectOrderStatus(result, orderId) {
  assert.notEqual(result.isError, true, `get_order_status failed: ${JSON.stringify(result.content)}`);
  const out = result.structuredContent;
  assert.ok(out, 'get_order_status returned no structuredContent');
  assert.equal(out.order_id, orderId, 'get_order_status: the order asked for');
  assert.equal(typeof out.status, 'string');
  assert.ok(Array.isArray(out.timeline) && out.timeline.length > 0, 'get_order_status: a timeline');
  assert.match(out.customer.email, /\*\*\*/, 'get_order_status: the email is masked');
  assert.ok(!('internal_note' in out), 'get_order_status: no staff-only note');
  return out;
}

// Valid arguments for cancel_order, for a call that must be refused for its
// scope before anything looks at them.
export const CANCEL_ARGS = { order_id: 'ord_1C3FBD9BGRFZEHYA', reason: 'customer_request' };

// run runs main, prints its summary lines, and turns any error into exit
// status 1 with the reason (and the cause chain an SDK error carries) on
// stdout.
export async function run(main) {
  try {
    const lines = await main();
    for (const line of lines ?? []) console.log(line);
    process.exit(0);
  } catch (err) {
    console.log(describe(err));
    if (err?.stack) console.error(err.stack);
    process.exit(1);
  }
}

function describe(err) {
  const parts = [];
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    const code = e.code !== undefined ? ` (code ${e.code})` : '';
    parts.push(`${e.name ?? 'Error'}${code}: ${e.message ?? String(e)}`);
    if (e.data !== undefined) parts.push(`  data: ${JSON.stringify(e.data)}`);
  }
  return parts.join('\n  caused by ');
}
