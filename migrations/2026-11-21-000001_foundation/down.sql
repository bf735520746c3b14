DROP TABLE users;
DROP TABLE ticket_types;
DROP TABLE events;
