-- At most one refund per payment may wait for PayPal's answer, so a repeat of an unanswered
-- refund can never become a second refund.
CREATE UNIQUE INDEX refunds_one_in_flight ON refunds (payment_id) WHERE status = 'REQUESTED';
