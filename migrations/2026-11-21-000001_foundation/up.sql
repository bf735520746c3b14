-- Foundation: events, their ticket types, and staff accounts.
-- Money is integer minor units plus an ISO 4217 code; times are UTC (timestamptz).

CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    slug            TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 120),
    title           TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description     TEXT NOT NULL DEFAULT '',
    venue           TEXT NOT NULL DEFAULT '',
    timezone        TEXT NOT NULL,
    starts_at       TIMESTAMPTZ NOT NULL,
    ends_at         TIMESTAMPTZ NOT NULL,
    capacity        INTEGER NOT NULL CHECK (capacity >= 0),
    -- Seats currently taken by held, awaiting_payment and paid bookings (kept by the booking code).
    seats_taken     INTEGER NOT NULL DEFAULT 0,
    visibility      TEXT NOT NULL DEFAULT 'draft' CHECK (visibility IN ('draft', 'public', 'private')),
    private_token   TEXT UNIQUE CHECK (private_token IS NULL OR length(private_token) >= 22),
    waiver_required BOOLEAN NOT NULL DEFAULT FALSE,
    waiver_text     TEXT NOT NULL DEFAULT '',
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (ends_at >= starts_at),
    -- The last line of defence against overselling: the database itself refuses it.
    CHECK (seats_taken >= 0 AND seats_taken <= capacity),
    CHECK (visibility <> 'private' OR private_token IS NOT NULL)
);

-- The public listing: upcoming public events, soonest first.
CREATE INDEX events_public_listing ON events (starts_at, id) WHERE visibility = 'public';

CREATE TABLE ticket_types (
    id              BIGSERIAL PRIMARY KEY,
    event_id        BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 120),
    description     TEXT NOT NULL DEFAULT '',
    price_minor     BIGINT NOT NULL CHECK (price_minor >= 0),
    currency        CHAR(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    capacity        INTEGER NOT NULL CHECK (capacity >= 0),
    seats_taken     INTEGER NOT NULL DEFAULT 0,
    sales_open_at   TIMESTAMPTZ,
    sales_close_at  TIMESTAMPTZ,
    max_per_booking INTEGER NOT NULL DEFAULT 10 CHECK (max_per_booking BETWEEN 1 AND 100),
    position        INTEGER NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (seats_taken >= 0 AND seats_taken <= capacity),
    CHECK (sales_open_at IS NULL OR sales_close_at IS NULL OR sales_close_at > sales_open_at)
);

CREATE INDEX ticket_types_event ON ticket_types (event_id, position, id);

CREATE TABLE users (
    id              BIGSERIAL PRIMARY KEY,
    email           TEXT NOT NULL,
    name            TEXT NOT NULL DEFAULT '',
    password_hash   TEXT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('admin', 'staff')),
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX users_email_lower ON users (lower(email));
