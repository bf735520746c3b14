-- PayPal payments: one order per booking, its capture, refunds, and every webhook delivery.

CREATE TABLE payments (
    id               BIGSERIAL PRIMARY KEY,
    booking_id       BIGINT NOT NULL UNIQUE REFERENCES bookings (id),
    provider         TEXT NOT NULL DEFAULT 'paypal',
    order_id         TEXT NOT NULL UNIQUE,
    -- PayPal's order status as last seen (CREATED, PAYER_ACTION_REQUIRED, APPROVED, COMPLETED, VOIDED).
    order_status     TEXT NOT NULL,
    capture_id       TEXT UNIQUE,
    -- PayPal's capture status as last seen (COMPLETED, PENDING, DECLINED, REFUNDED, PARTIALLY_REFUNDED, ...).
    capture_status   TEXT,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         CHAR(3) NOT NULL,
    approve_url      TEXT NOT NULL,
    -- Bumped after a declined capture so that the next capture gets a new PayPal-Request-Id.
    capture_attempt  INTEGER NOT NULL DEFAULT 0,
    refunded_minor   BIGINT NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
    -- Set when the buyer's approval came after the hold was lost and the seats were gone.
    late_refused     BOOLEAN NOT NULL DEFAULT FALSE,
    -- When reconciliation last looked at it (claims the row across instances).
    reconciled_at    TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE refunds (
    id               BIGSERIAL PRIMARY KEY,
    payment_id       BIGINT NOT NULL REFERENCES payments (id),
    request_id       TEXT NOT NULL UNIQUE,
    paypal_refund_id TEXT UNIQUE,
    amount_minor     BIGINT NOT NULL CHECK (amount_minor > 0),
    currency         CHAR(3) NOT NULL,
    status           TEXT NOT NULL,
    note             TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX refunds_payment ON refunds (payment_id);

CREATE TABLE webhook_events (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    event_type       TEXT NOT NULL,
    resource_type    TEXT NOT NULL DEFAULT '',
    resource_id      TEXT NOT NULL DEFAULT '',
    order_id         TEXT,
    body             JSONB NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at     TIMESTAMPTZ,
    outcome          TEXT NOT NULL DEFAULT ''
);

CREATE INDEX webhook_events_order ON webhook_events (order_id);
