-- One currency per event (issue 16). The currency becomes a property of the event, chosen
-- from the ISO 4217 codes PayPal accepts; ticket types keep their `currency` column (every
-- reader of prices stays as it is) but it is tied to the event's by a foreign key on
-- (event_id, currency) with ON UPDATE CASCADE: a ticket type in another currency cannot be
-- stored, and changing the event's currency carries its ticket types along.
ALTER TABLE events ADD COLUMN currency CHAR(3) NOT NULL DEFAULT 'EUR'
    CONSTRAINT events_currency_paypal CHECK (currency IN ('AUD', 'BRL', 'CAD', 'CNY', 'CZK',
        'DKK', 'EUR', 'HKD', 'HUF', 'ILS', 'JPY', 'MYR', 'MXN', 'TWD', 'NZD', 'NOK', 'PHP',
        'PLN', 'GBP', 'SGD', 'SEK', 'CHF', 'THB', 'USD'));

-- Backfill from the ticket types: the most common currency among an event's types (ties:
-- alphabetical), if PayPal accepts it; otherwise EUR stays.
UPDATE events e SET currency = pick.currency
  FROM (SELECT DISTINCT ON (event_id) event_id, currency
          FROM ticket_types
         WHERE currency IN ('AUD', 'BRL', 'CAD', 'CNY', 'CZK', 'DKK', 'EUR', 'HKD', 'HUF',
                            'ILS', 'JPY', 'MYR', 'MXN', 'TWD', 'NZD', 'NOK', 'PHP', 'PLN',
                            'GBP', 'SGD', 'SEK', 'CHF', 'THB', 'USD')
         GROUP BY event_id, currency
         ORDER BY event_id, count(*) DESC, currency) pick
 WHERE pick.event_id = e.id;

-- An event whose ticket types were in more than one currency (or in one PayPal refuses):
-- the others take the event's currency, keeping their price in minor units, and the change
-- is written to the audit log (by "the site", no user) so an admin can check those prices.
INSERT INTO audit_log (user_id, action, entity, entity_id, before, after, ip)
SELECT NULL, 'ticket_type.currency_unified', 'ticket_type', t.id,
       jsonb_build_object('currency', t.currency),
       jsonb_build_object('currency', e.currency, 'note',
           'The event had ticket types in more than one currency; this one now uses the event''s currency. Check its price.'),
       ''
  FROM ticket_types t JOIN events e ON e.id = t.event_id
 WHERE t.currency <> e.currency;
UPDATE ticket_types t SET currency = e.currency
  FROM events e
 WHERE e.id = t.event_id AND t.currency <> e.currency;

ALTER TABLE events ADD CONSTRAINT events_id_currency UNIQUE (id, currency);
ALTER TABLE ticket_types ADD CONSTRAINT ticket_types_event_currency
    FOREIGN KEY (event_id, currency) REFERENCES events (id, currency)
    ON UPDATE CASCADE ON DELETE CASCADE;
