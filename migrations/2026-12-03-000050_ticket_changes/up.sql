-- Per-ticket cancel and refund (issue 16). A ticket (attendee row) is valid until it is
-- cancelled or refunded; then it stays as a record, its code stops working at the door, and
-- its seat is back in capacity. The booking's `seats` and its items' `quantity` count the
-- seats it still holds (so `seats taken == seats of active bookings` keeps holding); an item
-- whose every ticket was cancelled keeps its row (the price paid) with quantity 0.
ALTER TABLE attendees
    ADD COLUMN cancelled_at  TIMESTAMPTZ,
    ADD COLUMN cancel_state  TEXT CHECK (cancel_state IN ('cancelled', 'refunded')),
    ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '',
    ADD CONSTRAINT attendees_cancelled_together
        CHECK ((cancelled_at IS NULL) = (cancel_state IS NULL));

ALTER TABLE booking_items DROP CONSTRAINT booking_items_quantity_check;
ALTER TABLE booking_items ADD CONSTRAINT booking_items_quantity_check CHECK (quantity >= 0);

-- A refund of one ticket names it; a ticket is refunded at most once (a refused ask,
-- FAILED or CANCELLED, does not count and may be asked again under a new request id).
ALTER TABLE refunds ADD COLUMN attendee_id BIGINT REFERENCES attendees (id);
CREATE UNIQUE INDEX refunds_one_per_ticket ON refunds (attendee_id)
    WHERE attendee_id IS NOT NULL AND status NOT IN ('FAILED', 'CANCELLED');

-- "One of your tickets was cancelled/refunded": every kind so far plus ticket_cancelled.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket', 'booking_links', 'ticket_cancelled'));
