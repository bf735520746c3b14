DELETE FROM outbox WHERE kind = 'ticket_cancelled';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket', 'booking_links'));
DROP INDEX refunds_one_per_ticket;
ALTER TABLE refunds DROP COLUMN attendee_id;
-- Items emptied by cancelled tickets cannot satisfy the old check; they go.
DELETE FROM booking_items WHERE quantity = 0;
ALTER TABLE booking_items DROP CONSTRAINT booking_items_quantity_check;
ALTER TABLE booking_items ADD CONSTRAINT booking_items_quantity_check CHECK (quantity > 0);
ALTER TABLE attendees DROP CONSTRAINT attendees_cancelled_together;
ALTER TABLE attendees DROP COLUMN cancel_reason, DROP COLUMN cancel_state, DROP COLUMN cancelled_at;
