DROP INDEX refunds_one_in_flight;
ALTER TABLE refunds DROP COLUMN attempted_at;
ALTER TABLE refunds DROP COLUMN form_token;
