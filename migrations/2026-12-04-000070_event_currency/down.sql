ALTER TABLE ticket_types DROP CONSTRAINT ticket_types_event_currency;
ALTER TABLE events DROP CONSTRAINT events_id_currency;
ALTER TABLE events DROP COLUMN currency;
