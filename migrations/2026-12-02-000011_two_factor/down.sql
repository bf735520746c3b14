ALTER TABLE admin_sessions DROP COLUMN second_factor_at;
DROP TABLE two_factor_recovery_codes;
ALTER TABLE users
    DROP CONSTRAINT users_totp_enabled_has_secret,
    DROP COLUMN two_factor_required,
    DROP COLUMN totp_last_step,
    DROP COLUMN totp_enabled_at,
    DROP COLUMN totp_secret;
