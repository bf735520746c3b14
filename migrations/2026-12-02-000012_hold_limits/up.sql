-- Hold limits (issue 14, stock hoarding) and private links that stay cut off.
--
-- Who made a hold: the client key (the client's address; IPv6 by /64), so that the seats
-- one client holds at once for an event can be capped inside the hold's own lock. NULL for
-- bookings made before this migration (they count towards no cap).
ALTER TABLE bookings ADD COLUMN client_key TEXT;
-- The private link a booking was made with, as tokens::derived("event-link", token): its
-- booking page links back to the event only while that is still the event's link. NULL: the
-- booking was made on the public page.
ALTER TABLE bookings ADD COLUMN private_link_hash TEXT;
-- The active holds of one client for one event (the cap), and of one event (seats "in other
-- buyers' baskets").
CREATE INDEX bookings_active_by_client ON bookings (event_id, client_key)
    WHERE state IN ('held', 'awaiting_payment');

-- A token left on an event that is not private would come back if it were made private
-- again; from now on leaving "private" drops the token, and this drops the ones left so far.
UPDATE events SET private_token = NULL WHERE visibility <> 'private';

DROP FUNCTION create_hold(BIGINT, BIGINT[], INTEGER[], BIGINT[], TEXT, TEXT, TEXT, TIMESTAMPTZ, TEXT, TEXT[]);

-- create_hold as migration 9 made it, plus:
--   p_client_key   who asks (stored on the booking)
--   p_client_cap   at most this many seats in the client's active holds for the event, this
--                  hold included (NULL: no cap). Counted while the event row is locked (by
--                  take_seats), so parallel holds of one client cannot pass it together.
--                  Refused with SQLSTATE TK003, DETAIL = the seats the client holds already.
--   p_link_hash    the private link the hold was made with (see bookings.private_link_hash)
CREATE FUNCTION create_hold(
    p_event_id       BIGINT,
    p_type_ids       BIGINT[],
    p_quantities     INTEGER[],
    p_prices         BIGINT[],
    p_currency       TEXT,
    p_reference      TEXT,
    p_access_token   TEXT,
    p_expires_at     TIMESTAMPTZ,
    p_idempotency    TEXT,
    p_ticket_codes   TEXT[],
    p_client_key     TEXT,
    p_client_cap     INTEGER,
    p_link_hash      TEXT,
    OUT booking_id   BIGINT,
    OUT outcome      TEXT
) LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    v_seats   INTEGER := (SELECT sum(q) FROM unnest(p_quantities) AS q);
    v_total   BIGINT  := (SELECT sum(q::bigint * p) FROM unnest(p_quantities, p_prices) AS x(q, p));
    v_held    INTEGER;
BEGIN
    IF p_idempotency IS NOT NULL THEN
        SELECT id INTO booking_id FROM bookings WHERE idempotency_key = p_idempotency;
        IF FOUND THEN
            outcome := 'existing';
            RETURN;
        END IF;
    END IF;

    -- A hold is a reservation of at most HOLD_MINUTES: its commit need not wait for the disk.
    -- A crash can lose only whole recent holds (booking rows and counters together).
    PERFORM set_config('synchronous_commit', 'off', true);

    -- 1 and 2. The event row, then every ticket type (inside its sale window).
    IF NOT take_seats(p_event_id, p_type_ids, p_quantities, true) THEN
        booking_id := NULL;
        outcome := 'not_enough';
        RETURN;
    END IF;

    -- 3. The client's cap, under the event row's lock taken in step 1: a parallel hold of the
    -- same client waits for this one's commit and then counts it (READ COMMITTED takes a new
    -- snapshot per statement). Holds past their deadline that the sweeper has not reached yet
    -- count no more.
    IF p_client_cap IS NOT NULL AND p_client_key IS NOT NULL THEN
        SELECT coalesce(sum(b.seats), 0) INTO v_held
          FROM bookings b
         WHERE b.event_id = p_event_id AND b.client_key = p_client_key
           AND b.state IN ('held', 'awaiting_payment') AND b.hold_expires_at > now();
        IF v_held + v_seats > p_client_cap THEN
            RAISE EXCEPTION 'client hold limit' USING ERRCODE = 'TK003', DETAIL = v_held::text;
        END IF;
    END IF;

    -- 4. The booking and what it holds.
    INSERT INTO bookings (reference, access_token, event_id, state, seats, total_minor,
                          currency, hold_expires_at, idempotency_key, client_key,
                          private_link_hash)
    VALUES (p_reference, p_access_token, p_event_id, 'held', v_seats, v_total,
            p_currency, p_expires_at, p_idempotency, p_client_key, p_link_hash)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO booking_id;
    IF booking_id IS NULL THEN
        -- The same form won a race a moment ago: give the seats back by aborting.
        RAISE EXCEPTION 'duplicate form submission' USING ERRCODE = 'TK002';
    END IF;

    INSERT INTO booking_items (booking_id, ticket_type_id, quantity, unit_price_minor, currency)
    SELECT booking_id, r.id, r.q, r.p, p_currency
      FROM unnest(p_type_ids, p_quantities, p_prices) AS r(id, q, p);

    INSERT INTO attendees (booking_id, ticket_type_id, position, ticket_code)
    SELECT booking_id, r.id, row_number() OVER (ORDER BY r.ord, g), p_ticket_codes[row_number() OVER (ORDER BY r.ord, g)]
      FROM unnest(p_type_ids, p_quantities) WITH ORDINALITY AS r(id, q, ord),
           generate_series(1, r.q) AS g;

    INSERT INTO booking_history (booking_id, from_state, to_state, note)
    VALUES (booking_id, NULL, 'held', v_seats || ' seat(s) held');

    outcome := 'created';
END;
$$;
