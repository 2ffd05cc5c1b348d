-- Anti-spam and anti-abuse policy shared by every replica (issue 6). The knobs themselves
-- (thresholds, scores, greylisting, auto-ban, rate limits, anti-virus) live in `settings` under
-- keys `antispam.<name>`; a key that is absent takes the built-in default (mc_policy::antispam).

-- Senders that skip every anti-spam test ('antispam') or only greylisting ('greylist'). An
-- entry matches when the client address lies in [lower_ip, upper_ip] (both NULL: any address)
-- and the envelope sender matches `address`, a pattern where `*` stands for any run of
-- characters (`*` alone: any sender, including the null sender).
CREATE TABLE whitelist (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('antispam', 'greylist')),
    description  text NOT NULL DEFAULT '' CHECK (length(description) <= 200),
    lower_ip     inet NULL,
    upper_ip     inet NULL,
    address      text NOT NULL DEFAULT '*' CHECK (length(address) BETWEEN 1 AND 320),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((lower_ip IS NULL) = (upper_ip IS NULL)),
    CHECK (lower_ip IS NULL OR family(lower_ip) = family(upper_ip)),
    CHECK (lower_ip IS NULL OR lower_ip <= upper_ip)
);
CREATE INDEX whitelist_kind ON whitelist (kind);

-- DNS block lists: 'dnsbl' zones are asked about the client address (reversed octets or
-- nibbles + zone), 'surbl' zones about the domains of links in the body. `expected` lists the
-- answers that count as listed: addresses with `*` wildcards or `a-b` last-octet ranges,
-- separated by `|` (e.g. `127.0.0.2-8|127.0.0.10-11`).
CREATE TABLE dns_blacklists (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('dnsbl', 'surbl')),
    zone         text NOT NULL CHECK (zone = lower(zone) AND zone LIKE '%.%'),
    expected     text NOT NULL DEFAULT '127.0.0.*' CHECK (length(expected) BETWEEN 1 AND 200),
    score        integer NOT NULL DEFAULT 3 CHECK (score BETWEEN 0 AND 1000),
    message      text NOT NULL DEFAULT '' CHECK (length(message) <= 200),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, zone)
);

-- The reference server's default lists, inactive until an administrator turns them on.
INSERT INTO dns_blacklists (kind, zone, expected, score, message, active) VALUES
    ('dnsbl', 'zen.spamhaus.org', '127.0.0.2-8|127.0.0.10-11', 3, 'Rejected by Spamhaus.', false),
    ('dnsbl', 'bl.spamcop.net', '127.0.0.2', 3, 'Rejected by SpamCop.', false),
    ('surbl', 'multi.surbl.org', '127.0.0.*', 3, 'Rejected by SURBL.', false);

-- Our own backup MX hosts (incoming relays): mail from them is scored on the address that
-- handed it to them, read from the Received: headers.
CREATE TABLE incoming_relays (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    lower_ip     inet NOT NULL,
    upper_ip     inet NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (family(lower_ip) = family(upper_ip)),
    CHECK (lower_ip <= upper_ip)
);

-- Bans are IP ranges with every protocol off and an expiry (the reference's model). The flag
-- tells them apart from ranges an administrator made, for `mailctl ban list`.
ALTER TABLE ip_ranges ADD COLUMN ban boolean NOT NULL DEFAULT false;
CREATE INDEX ip_ranges_ban ON ip_ranges (expires_at) WHERE ban;

-- Mail scored at or above the mark threshold: local copies are filed into Junk.
ALTER TABLE queue_entries ADD COLUMN junk boolean NOT NULL DEFAULT false;
