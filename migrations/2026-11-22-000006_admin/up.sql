-- Staff sessions (server side, revocable) and the audit log of every admin change.

CREATE TABLE admin_sessions (
    id               BIGSERIAL PRIMARY KEY,
    -- SHA-256 of the session secret held in the private cookie.
    token_hash       TEXT NOT NULL UNIQUE,
    user_id          BIGINT NOT NULL REFERENCES users (id),
    csrf_token       TEXT NOT NULL,
    ip               TEXT NOT NULL DEFAULT '',
    user_agent       TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    revoked_at       TIMESTAMPTZ
);

CREATE INDEX admin_sessions_user ON admin_sessions (user_id);

CREATE TABLE audit_log (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT REFERENCES users (id),
    action           TEXT NOT NULL,
    entity           TEXT NOT NULL,
    entity_id        BIGINT,
    before           JSONB,
    after            JSONB,
    ip               TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);
CREATE INDEX audit_log_created ON audit_log (created_at DESC);
