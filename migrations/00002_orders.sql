-- The order-status domain: customers, their orders, each order's status
-- timeline and its shipment.
--
-- Identifiers that leave the server are opaque strings (cus_/ord_ followed by
-- 16 Crockford base32 characters), never sequential integers, so one id says
-- nothing about how many others exist or what they are. Surrogate integer keys
-- (order_events.id) never leave the server.
--
-- Every table that holds customer data carries customer_id, so that one
-- row-level security policy shape covers all of them (00005_least_privilege.sql).

-- +goose Up
CREATE TABLE customers (
    id            text PRIMARY KEY CHECK (id ~ '^cus_[0-9A-HJKMNP-TV-Z]{16}$'),
    name          text NOT NULL,
    email         text NOT NULL,
    phone         text NOT NULL,
    address_line1 text NOT NULL,
    city          text NOT NULL,
    postal_code   text NOT NULL,
    country_code  text NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id                    text PRIMARY KEY CHECK (id ~ '^ord_[0-9A-HJKMNP-TV-Z]{16}$'),
    customer_id           text NOT NULL REFERENCES customers (id),
    status                text NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered', 'cancelled', 'returned')),
    placed_at             timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    item_count            integer NOT NULL CHECK (item_count > 0),
    total_cents           bigint NOT NULL CHECK (total_cents >= 0),
    currency              text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    card_brand            text NOT NULL,
    card_last4            text NOT NULL CHECK (card_last4 ~ '^[0-9]{4}$'),
    -- Free text the customer typed at checkout: untrusted input. Returned by
    -- get_order_status only after internal/sanitize has cleaned it.
    delivery_instructions text NOT NULL DEFAULT '',
    -- Staff-only. Never returned by a tool, never logged, and not even
    -- readable by the server's database role (see the column grants).
    internal_note         text NOT NULL DEFAULT '',
    cost_cents            bigint NOT NULL DEFAULT 0,
    fraud_flag            boolean NOT NULL DEFAULT false,
    cancelled_at          timestamptz,
    cancel_reason         text,
    UNIQUE (id, customer_id)
);

CREATE INDEX orders_customer_recent ON orders (customer_id, placed_at DESC, id DESC);

CREATE TABLE order_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id    text NOT NULL,
    customer_id text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'processing', 'shipped', 'delivered', 'cancelled', 'returned')),
    occurred_at timestamptz NOT NULL,
    description text NOT NULL,
    -- The composite key makes an event's customer the order's customer, so
    -- the tenant column cannot drift from the row it describes.
    FOREIGN KEY (order_id, customer_id) REFERENCES orders (id, customer_id)
);

CREATE INDEX order_events_order ON order_events (order_id, occurred_at, id);

CREATE TABLE shipments (
    order_id           text PRIMARY KEY,
    customer_id        text NOT NULL,
    carrier            text NOT NULL,
    tracking_number    text NOT NULL,
    shipped_at         timestamptz NOT NULL,
    estimated_delivery date,
    delivered_at       timestamptz,
    FOREIGN KEY (order_id, customer_id) REFERENCES orders (id, customer_id)
);

-- +goose Down
DROP TABLE shipments;
DROP TABLE order_events;
DROP TABLE orders;
DROP TABLE customers;
