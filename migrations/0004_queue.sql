-- The durable delivery queue. A message is accepted (SMTP 250) only once its queue entry and
-- every recipient row are committed here. Workers lease recipients in Redis; every state change
-- they write is fenced by the attempt epoch so a worker whose lease expired changes nothing.

CREATE TABLE queue_entries (
    id               uuid PRIMARY KEY,                 -- UUIDv7: time-ordered, shown as "queued as"
    message_id       bigint NOT NULL REFERENCES messages (id) ON DELETE RESTRICT,
    sender           text NOT NULL,                    -- '' for the null reverse-path <>
    client_ip        inet NULL,
    client_helo      text NULL,
    auth_user        text NULL,
    -- RFC 3461 parameters given with MAIL FROM.
    dsn_ret          text NULL CHECK (dsn_ret IN ('FULL', 'HDRS')),
    dsn_envid        text NULL,
    received_at      timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL
);
CREATE INDEX queue_entries_message_id ON queue_entries (message_id);

CREATE TABLE queue_recipients (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id         uuid NOT NULL REFERENCES queue_entries (id) ON DELETE CASCADE,
    address          text NOT NULL,
    -- RFC 3461 parameters given with RCPT TO.
    dsn_notify       text NULL,
    dsn_orcpt        text NULL,
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'delivered', 'failed', 'held')),
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Fencing token: bumped by every claim; an update carrying an older epoch hits zero rows.
    epoch            bigint NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_attempt_at  timestamptz NULL,
    last_error       text NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (queue_id, address)
);
CREATE INDEX queue_recipients_due ON queue_recipients (next_attempt_at) WHERE state = 'queued';
