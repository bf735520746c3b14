-- "Your bookings": the links of every booking made with an address (find my booking).
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket', 'booking_links'));
