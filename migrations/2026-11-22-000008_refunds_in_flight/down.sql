DROP INDEX refunds_one_in_flight;
