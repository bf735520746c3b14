-- Door check-in (issue 16): what an event does with an attendee whose required waiver is
-- unsigned ('sign_at_door': signed on the staff device, then in; 'refuse': no entry until
-- signed), who checked a ticket in and from which device (undo, offline sync), waivers
-- signed at the door and by whom, the per-event Ed25519 key that signs the QR codes, and
-- the scans offline devices sent in (a scan is its device, code and scan time: sent
-- again, it is the same scan and gets the same answer).
ALTER TABLE events ADD COLUMN door_waiver_policy TEXT NOT NULL DEFAULT 'sign_at_door'
    CHECK (door_waiver_policy IN ('sign_at_door', 'refuse'));

ALTER TABLE attendees ADD COLUMN checked_in_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE attendees ADD COLUMN checked_in_device TEXT;

ALTER TABLE waivers ADD COLUMN signed_at_door BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE waivers ADD COLUMN signed_by_user_id BIGINT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE waivers ADD CONSTRAINT waivers_door_signer CHECK (NOT signed_at_door OR signed_by_user_id IS NOT NULL);

CREATE TABLE door_keys (
    event_id     BIGINT PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    -- PKCS#8 v2 document of the Ed25519 key pair; never leaves the server.
    private_pkcs8 BYTEA NOT NULL,
    -- The raw 32-byte public key, published to check-in devices.
    public_key   BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE door_scans (
    id          BIGSERIAL PRIMARY KEY,
    event_id    BIGINT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    attendee_id BIGINT REFERENCES attendees (id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL,
    ticket_code TEXT NOT NULL,
    scanned_at  TIMESTAMPTZ NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- What the server answered: checked_in, duplicate, refused.
    outcome     TEXT NOT NULL CHECK (outcome IN ('checked_in', 'duplicate', 'refused')),
    message     TEXT NOT NULL,
    UNIQUE (device_id, ticket_code, scanned_at)
);
CREATE INDEX door_scans_event ON door_scans (event_id);
