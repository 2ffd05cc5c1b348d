-- Message store: immutable message records (body in the object store, parsed metadata here),
-- mailboxes with their IMAP counters, and per-mailbox message rows.

-- Every object in the store that a row may reference. The collector deletes an object only after
-- deleting its row here, and only once no message references it and it was last referenced longer
-- ago than a grace period; a writer refreshes last_referenced_at *before* it uploads (and again in
-- the transaction that commits the message), so an object being written is never collected.
CREATE TABLE blobs (
    blob_key            text PRIMARY KEY,          -- "blobs/<sha256 hex>"
    size_bytes          bigint NOT NULL CHECK (size_bytes >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    last_referenced_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX blobs_last_referenced_at ON blobs (last_referenced_at);

-- One stored message body, shared by the queue entry and every mailbox copy of it.
CREATE TABLE messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    blob_key        text NOT NULL REFERENCES blobs (blob_key) ON DELETE RESTRICT,
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    -- Parsed once at delivery so that IMAP rarely reads the body: ENVELOPE, BODYSTRUCTURE, the
    -- header fields SEARCH and SORT use, and the byte ranges of MIME parts.
    metadata        jsonb NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_blob_key ON messages (blob_key);

-- A mailbox's UIDVALIDITY changes whenever a name is reused: it comes from one global sequence.
CREATE SEQUENCE mailbox_uid_validity_seq AS bigint MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE mailboxes (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id       bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 1024),
    uid_validity     bigint NOT NULL DEFAULT nextval('mailbox_uid_validity_seq')
                         CHECK (uid_validity BETWEEN 1 AND 4294967295),
    uid_next         bigint NOT NULL DEFAULT 1 CHECK (uid_next BETWEEN 1 AND 4294967296),
    highest_modseq   bigint NOT NULL DEFAULT 1 CHECK (highest_modseq >= 1),
    special_use      text NULL CHECK (special_use IN ('\All', '\Archive', '\Drafts', '\Flagged', '\Junk', '\Sent', '\Trash')),
    subscribed       boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, name),
    -- INBOX is case-insensitive in IMAP: only the canonical spelling may be stored.
    CHECK (upper(name) <> 'INBOX' OR name = 'INBOX')
);

CREATE TABLE mailbox_messages (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    mailbox_id      bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid             bigint NOT NULL CHECK (uid BETWEEN 1 AND 4294967295),
    message_id      bigint NOT NULL REFERENCES messages (id) ON DELETE RESTRICT,
    flags           text[] NOT NULL DEFAULT '{}',
    modseq          bigint NOT NULL CHECK (modseq >= 1),
    internal_date   timestamptz NOT NULL DEFAULT now(),
    size_bytes      bigint NOT NULL CHECK (size_bytes >= 0),
    -- Idempotency key of the delivery that created the row (the queue recipient id), so that a
    -- retried delivery finds its earlier copy instead of making a second one. Unique per mailbox:
    -- one recipient may expand to several mailboxes (lists, forwards that keep a copy).
    delivery_key    text NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (mailbox_id, uid),
    UNIQUE (mailbox_id, delivery_key)
);
CREATE INDEX mailbox_messages_modseq ON mailbox_messages (mailbox_id, modseq);
CREATE INDEX mailbox_messages_message_id ON mailbox_messages (message_id);

-- Expunged UIDs with the MODSEQ of their removal: how sessions on other replicas (and QRESYNC
-- clients) learn what disappeared since the state they last saw.
CREATE TABLE mailbox_expunges (
    mailbox_id   bigint NOT NULL REFERENCES mailboxes (id) ON DELETE CASCADE,
    uid          bigint NOT NULL,
    modseq       bigint NOT NULL,
    expunged_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX mailbox_expunges_modseq ON mailbox_expunges (mailbox_id, modseq);
