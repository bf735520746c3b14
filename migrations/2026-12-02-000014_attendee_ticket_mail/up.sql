-- Every attendee with an address of their own gets their own ticket mail.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket'));
