DROP TRIGGER waivers_final ON waivers;
DROP FUNCTION waivers_signed_are_final();
DROP TABLE waivers;
DROP TABLE waiver_texts;
DROP TABLE outbox;
