ALTER TABLE bookings DROP COLUMN terms_accepted_at, DROP COLUMN terms_version;
DROP TABLE legal_pages;
DROP TABLE organiser;
