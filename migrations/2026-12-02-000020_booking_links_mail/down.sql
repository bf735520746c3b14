DELETE FROM outbox WHERE kind = 'booking_links';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket'));
