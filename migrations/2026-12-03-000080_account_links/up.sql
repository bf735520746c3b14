-- One-time links for staff accounts: an invite to set the first password, and "forgot
-- password". Only a SHA-256 of the token is kept; the token itself travels in the outbox row
-- that mails it (`outbox.secret`) and is erased once the mail is sent.
CREATE TABLE password_links (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('invite', 'reset')),
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX password_links_user ON password_links (user_id);

-- Account mails belong to a user, not a booking.
ALTER TABLE outbox ALTER COLUMN booking_id DROP NOT NULL;
ALTER TABLE outbox ADD COLUMN user_id BIGINT REFERENCES users (id) ON DELETE CASCADE;
ALTER TABLE outbox ADD COLUMN secret TEXT;
ALTER TABLE outbox ADD CONSTRAINT outbox_booking_or_user CHECK ((booking_id IS NULL) <> (user_id IS NULL));

ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket', 'booking_links', 'ticket_cancelled', 'account_invite', 'password_reset'));
