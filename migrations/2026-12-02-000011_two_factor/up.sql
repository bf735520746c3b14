-- Admin two-factor authentication (TOTP, RFC 6238) with one-time recovery codes.

-- The TOTP secret (20 random bytes, base32). While `totp_enabled_at` is null it is an
-- enrolment in progress (shown on the enrolment page until confirmed with a code); once
-- enabled it is never shown again. `totp_last_step` is the last accepted 30-second time step,
-- so the same code is never accepted twice. `two_factor_required` is set per account by an
-- admin (ADMIN_REQUIRE_TWO_FACTOR requires it of every account).
ALTER TABLE users
    ADD COLUMN totp_secret          TEXT,
    ADD COLUMN totp_enabled_at      TIMESTAMPTZ,
    ADD COLUMN totp_last_step       BIGINT,
    ADD COLUMN two_factor_required  BOOLEAN NOT NULL DEFAULT FALSE,
    ADD CONSTRAINT users_totp_enabled_has_secret
        CHECK (totp_enabled_at IS NULL OR totp_secret IS NOT NULL);

-- Recovery codes: only their SHA-256; each can be used once.
CREATE TABLE two_factor_recovery_codes (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at     TIMESTAMPTZ,
    UNIQUE (user_id, code_hash)
);

-- When this session passed the second factor (null: it did not, or the account has none).
-- A session of an account with TOTP on and no second factor yet is pending: it opens
-- nothing but the code step.
ALTER TABLE admin_sessions ADD COLUMN second_factor_at TIMESTAMPTZ;
