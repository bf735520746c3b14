DELETE FROM outbox WHERE kind = 'payment_returned';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment'));
ALTER TABLE refunds DROP COLUMN automatic;
DROP INDEX webhook_events_unprocessed;
ALTER TABLE webhook_events DROP COLUMN attempted_at;
ALTER TABLE webhook_events DROP COLUMN attempts;
DROP INDEX payments_unhonoured;
ALTER TABLE payments DROP COLUMN unhonoured_at;
ALTER TABLE payments DROP COLUMN capture_claimed_until;
