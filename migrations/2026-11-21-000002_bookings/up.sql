-- Bookings, what they contain, who attends, and their history.
-- Seats are taken from events.seats_taken and ticket_types.seats_taken (CHECKed against
-- capacity) in the same transaction that moves a booking into or out of an active state
-- (held, awaiting_payment, paid), so at every commit:
--   events.seats_taken == sum(bookings.seats) over the event's active bookings.

CREATE TABLE bookings (
    id               BIGSERIAL PRIMARY KEY,
    -- Public reference shown to the buyer and sent to PayPal as invoice_id.
    reference        TEXT NOT NULL UNIQUE,
    -- Secret of the buyer's private booking link (256 bits).
    access_token     TEXT NOT NULL UNIQUE CHECK (length(access_token) >= 43),
    event_id         BIGINT NOT NULL REFERENCES events (id),
    state            TEXT NOT NULL DEFAULT 'held' CHECK (state IN
                       ('held', 'awaiting_payment', 'paid', 'cancelled', 'refunded', 'expired', 'reversed')),
    seats            INTEGER NOT NULL CHECK (seats > 0),
    total_minor      BIGINT NOT NULL CHECK (total_minor >= 0),
    currency         CHAR(3) NOT NULL,
    buyer_name       TEXT NOT NULL DEFAULT '',
    buyer_email      TEXT NOT NULL DEFAULT '',
    buyer_phone      TEXT NOT NULL DEFAULT '',
    hold_expires_at  TIMESTAMPTZ NOT NULL,
    hold_extended    BOOLEAN NOT NULL DEFAULT FALSE,
    -- The one-time token of the ticket form that created it: a resubmitted form finds this
    -- booking instead of making a second one.
    idempotency_key  TEXT UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    paid_at          TIMESTAMPTZ,
    closed_at        TIMESTAMPTZ
);

CREATE INDEX bookings_event_state ON bookings (event_id, state);
-- The sweeper's queue: active holds by deadline.
CREATE INDEX bookings_hold_deadline ON bookings (hold_expires_at)
    WHERE state IN ('held', 'awaiting_payment');
CREATE INDEX bookings_buyer_email ON bookings (lower(buyer_email));

CREATE TABLE booking_items (
    id               BIGSERIAL PRIMARY KEY,
    booking_id       BIGINT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    ticket_type_id   BIGINT NOT NULL REFERENCES ticket_types (id),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_minor BIGINT NOT NULL CHECK (unit_price_minor >= 0),
    currency         CHAR(3) NOT NULL,
    UNIQUE (booking_id, ticket_type_id)
);

CREATE INDEX booking_items_ticket_type ON booking_items (ticket_type_id);

CREATE TABLE attendees (
    id               BIGSERIAL PRIMARY KEY,
    booking_id       BIGINT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    ticket_type_id   BIGINT NOT NULL REFERENCES ticket_types (id),
    position         INTEGER NOT NULL,
    name             TEXT NOT NULL DEFAULT '',
    email            TEXT NOT NULL DEFAULT '',
    -- Printed on the ticket and in its QR code; typed or scanned at the door.
    ticket_code      TEXT NOT NULL UNIQUE,
    checked_in_at    TIMESTAMPTZ,
    UNIQUE (booking_id, position)
);

-- Every state change of a booking, for the booking's history.
CREATE TABLE booking_history (
    id               BIGSERIAL PRIMARY KEY,
    booking_id       BIGINT NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    from_state       TEXT,
    to_state         TEXT NOT NULL,
    note             TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX booking_history_booking ON booking_history (booking_id, id);
