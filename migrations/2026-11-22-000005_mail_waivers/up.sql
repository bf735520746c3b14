-- The mail outbox and online waivers.

-- Every email is a row written in the same transaction as the change that causes it; a worker
-- renders and sends it. `dedupe_key` makes queuing the same email twice impossible.
CREATE TABLE outbox (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('confirmation', 'waiver_request', 'waiver_reminder',
                                                   'cancellation', 'refund', 'late_payment')),
    dedupe_key       TEXT NOT NULL UNIQUE,
    booking_id       BIGINT NOT NULL REFERENCES bookings (id),
    attendee_id      BIGINT REFERENCES attendees (id),
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error       TEXT NOT NULL DEFAULT '',
    to_email         TEXT NOT NULL DEFAULT '',
    subject          TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ
);

CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_booking ON outbox (booking_id);

-- Each edit of an event's waiver text is a new version; signatures point at the version
-- and keep the hash of the exact text signed.
CREATE TABLE waiver_texts (
    id               BIGSERIAL PRIMARY KEY,
    event_id         BIGINT NOT NULL REFERENCES events (id),
    version          INTEGER NOT NULL,
    body             TEXT NOT NULL,
    sha256           TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (event_id, version)
);

CREATE TABLE waivers (
    id               BIGSERIAL PRIMARY KEY,
    attendee_id      BIGINT NOT NULL UNIQUE REFERENCES attendees (id),
    token            TEXT NOT NULL UNIQUE CHECK (length(token) >= 43),
    waiver_text_id   BIGINT REFERENCES waiver_texts (id),
    signed_name      TEXT,
    consent          BOOLEAN NOT NULL DEFAULT FALSE,
    signed_at        TIMESTAMPTZ,
    ip               TEXT,
    user_agent       TEXT,
    text_sha256      TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((signed_at IS NULL) = (signed_name IS NULL)),
    CHECK (signed_at IS NULL OR (consent AND waiver_text_id IS NOT NULL AND text_sha256 IS NOT NULL))
);

-- A signed waiver is final: the database refuses to change or unsign it.
CREATE FUNCTION waivers_signed_are_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.signed_at IS NOT NULL THEN
        RAISE EXCEPTION 'a signed waiver cannot be changed' USING ERRCODE = 'TK003';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER waivers_final BEFORE UPDATE ON waivers
    FOR EACH ROW EXECUTE FUNCTION waivers_signed_are_final();
