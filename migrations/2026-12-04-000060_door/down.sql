DROP TABLE door_scans;
DROP TABLE door_keys;
ALTER TABLE waivers DROP CONSTRAINT waivers_door_signer;
ALTER TABLE waivers DROP COLUMN signed_by_user_id;
ALTER TABLE waivers DROP COLUMN signed_at_door;
ALTER TABLE attendees DROP COLUMN checked_in_device;
ALTER TABLE attendees DROP COLUMN checked_in_by;
ALTER TABLE events DROP COLUMN door_waiver_policy;
