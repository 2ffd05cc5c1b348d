-- Auto-replies sent, so that each sender hears one per account and interval (RFC 3834 3.1.1).
-- Turning the auto-reply on again starts afresh: the admin side clears an account's rows then.
CREATE TABLE autoreply_sent (
    account_id  bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sender      text NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, sender)
);
