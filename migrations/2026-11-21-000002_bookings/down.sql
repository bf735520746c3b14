DROP TABLE booking_history;
DROP TABLE attendees;
DROP TABLE booking_items;
DROP TABLE bookings;
