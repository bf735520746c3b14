DELETE FROM outbox WHERE kind IN ('account_invite', 'password_reset');
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned',
    'attendee_ticket', 'booking_links', 'ticket_cancelled'));
ALTER TABLE outbox DROP CONSTRAINT outbox_booking_or_user;
ALTER TABLE outbox DROP COLUMN secret;
ALTER TABLE outbox DROP COLUMN user_id;
ALTER TABLE outbox ALTER COLUMN booking_id SET NOT NULL;
DROP TABLE password_links;
