-- Refunds waiting for PayPal's answer: when each was last sent (a claim, so that only one
-- caller asks at a time), and at most one per payment, so that a repeat of an unanswered
-- refund can never become a second refund.
ALTER TABLE refunds ADD COLUMN attempted_at TIMESTAMPTZ NOT NULL DEFAULT now();
-- The admin form's one-time token: a form sent twice finds its refund.
ALTER TABLE refunds ADD COLUMN form_token TEXT UNIQUE;
-- Before this, a refund PayPal refused or whose answer was lost stayed REQUESTED; which of the
-- two it was cannot be told here, so a person checks them in PayPal's dashboard.
UPDATE refunds SET status = 'REVIEW' WHERE status = 'REQUESTED';
CREATE UNIQUE INDEX refunds_one_in_flight ON refunds (payment_id) WHERE status = 'REQUESTED';
