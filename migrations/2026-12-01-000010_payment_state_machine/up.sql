-- The payment state machine (issue 12).
-- A capture in flight: set in one guarded UPDATE before PayPal's capture is called, cleared
-- when its answer is recorded, and lapsing after the call's worst case so that a crash cannot
-- pin seats forever. While it is live the booking cannot expire or be cancelled.
ALTER TABLE payments ADD COLUMN capture_claimed_until TIMESTAMPTZ;
-- Money arrived for a booking that could not be honoured (expired with its seats gone,
-- cancelled or released before the capture landed): refunded automatically, listed for
-- admins until the refund is done.
ALTER TABLE payments ADD COLUMN unhonoured_at TIMESTAMPTZ;
CREATE INDEX payments_unhonoured ON payments (unhonoured_at) WHERE unhonoured_at IS NOT NULL;
-- Webhooks are settled after they are recorded; a row left unprocessed (a failed settlement,
-- a crash) is settled again by a job, which claims it with attempted_at.
ALTER TABLE webhook_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE webhook_events ADD COLUMN attempted_at TIMESTAMPTZ;
CREATE INDEX webhook_events_unprocessed ON webhook_events (received_at) WHERE processed_at IS NULL;
-- Refunds the app made on its own (money without seats), as opposed to an admin's.
ALTER TABLE refunds ADD COLUMN automatic BOOLEAN NOT NULL DEFAULT FALSE;
-- "Your payment came after the booking closed; it is refunded in full."
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('confirmation', 'waiver_request',
    'waiver_reminder', 'refund', 'partial_refund', 'cancellation', 'late_payment', 'payment_returned'));
