DROP FUNCTION create_hold(BIGINT, BIGINT[], INTEGER[], BIGINT[], TEXT, TEXT, TEXT, TIMESTAMPTZ, TEXT, TEXT[], TEXT, INTEGER, TEXT);

-- create_hold as migration 9 made it.
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
    OUT booking_id   BIGINT,
    OUT outcome      TEXT
) LANGUAGE plpgsql AS $$
#variable_conflict use_variable
DECLARE
    v_seats   INTEGER := (SELECT sum(q) FROM unnest(p_quantities) AS q);
    v_total   BIGINT  := (SELECT sum(q::bigint * p) FROM unnest(p_quantities, p_prices) AS x(q, p));
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

    -- 3. The booking and what it holds.
    INSERT INTO bookings (reference, access_token, event_id, state, seats, total_minor,
                          currency, hold_expires_at, idempotency_key)
    VALUES (p_reference, p_access_token, p_event_id, 'held', v_seats, v_total,
            p_currency, p_expires_at, p_idempotency)
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

DROP INDEX bookings_active_by_client;
ALTER TABLE bookings DROP COLUMN private_link_hash;
ALTER TABLE bookings DROP COLUMN client_key;
