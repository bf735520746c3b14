-- create_hold as migration 3 made it, then without take_seats.
CREATE OR REPLACE FUNCTION create_hold(
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
    v_types   INTEGER;
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

    -- 1. The event row first (the lock order everywhere: booking, event, ticket types).
    UPDATE events SET seats_taken = seats_taken + v_seats
     WHERE id = p_event_id AND seats_taken + v_seats <= capacity;
    IF NOT FOUND THEN
        booking_id := NULL;
        outcome := 'not_enough';
        RETURN;
    END IF;

    -- 2. Every ticket type, inside its capacity and sale window.
    UPDATE ticket_types t SET seats_taken = t.seats_taken + r.q
      FROM unnest(p_type_ids, p_quantities) AS r(id, q)
     WHERE t.id = r.id AND t.event_id = p_event_id
       AND t.seats_taken + r.q <= t.capacity
       AND (t.sales_open_at IS NULL OR t.sales_open_at <= now())
       AND (t.sales_close_at IS NULL OR now() < t.sales_close_at);
    GET DIAGNOSTICS v_types = ROW_COUNT;
    IF v_types <> cardinality(p_type_ids) THEN
        -- Undo step 1 by aborting the whole statement; the caller reads SQLSTATE TK001.
        RAISE EXCEPTION 'not enough seats' USING ERRCODE = 'TK001';
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

DROP FUNCTION take_seats(BIGINT, BIGINT[], INTEGER[], BOOLEAN);
