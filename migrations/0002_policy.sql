-- Connection and relay policy (IP ranges) and cluster-wide settings.

CREATE TABLE ip_ranges (
    id                               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                             text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 40),
    priority                         integer NOT NULL CHECK (priority BETWEEN 0 AND 1000),
    lower_ip                         inet NOT NULL,
    upper_ip                         inet NOT NULL,
    allow_smtp                       boolean NOT NULL DEFAULT true,
    allow_pop3                       boolean NOT NULL DEFAULT true,
    allow_imap                       boolean NOT NULL DEFAULT true,
    -- The relay matrix: which sender/recipient categories may be delivered at all ...
    allow_local_to_local             boolean NOT NULL DEFAULT true,
    allow_local_to_external          boolean NOT NULL DEFAULT true,
    allow_external_to_local          boolean NOT NULL DEFAULT true,
    allow_external_to_external       boolean NOT NULL DEFAULT false,
    -- ... and which of them need SMTP authentication.
    require_auth_local_to_local      boolean NOT NULL DEFAULT true,
    require_auth_local_to_external   boolean NOT NULL DEFAULT true,
    require_auth_external_to_local   boolean NOT NULL DEFAULT false,
    require_auth_external_to_external boolean NOT NULL DEFAULT true,
    antispam                         boolean NOT NULL DEFAULT true,
    antivirus                        boolean NOT NULL DEFAULT true,
    expires_at                       timestamptz NULL,
    created_at                       timestamptz NOT NULL DEFAULT now(),
    CHECK (family(lower_ip) = family(upper_ip)),
    CHECK (masklen(lower_ip) = CASE family(lower_ip) WHEN 4 THEN 32 ELSE 128 END),
    CHECK (masklen(upper_ip) = CASE family(upper_ip) WHEN 4 THEN 32 ELSE 128 END),
    CHECK (lower_ip <= upper_ip)
);
CREATE INDEX ip_ranges_priority ON ip_ranges (priority DESC);
-- The per-connection lookup ("which live range holds this address") once auto-ban adds many rows.
CREATE INDEX ip_ranges_bounds ON ip_ranges (lower_ip, upper_ip);
CREATE INDEX ip_ranges_expires_at ON ip_ranges (expires_at) WHERE expires_at IS NOT NULL;

-- The reference server's two default ranges (FEATURES.md Appendix A), plus their IPv6
-- counterparts: the cluster is dual-stack, and an address no range matches is refused.
INSERT INTO ip_ranges (name, priority, lower_ip, upper_ip,
                       allow_external_to_external,
                       require_auth_local_to_local, require_auth_local_to_external,
                       require_auth_external_to_local, require_auth_external_to_external)
VALUES
    ('Internet',         10, '0.0.0.0', '255.255.255.255', true, true,  true,  false, true),
    ('Internet (IPv6)',  10, '::', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', true, true, true, false, true),
    ('My computer',      30, '127.0.0.1', '127.0.0.1', true, false, false, false, true),
    ('My computer (IPv6)', 30, '::1', '::1', true, false, false, false, true);

-- Cluster-wide runtime settings every replica must agree on (anti-spam knobs, delivery defaults).
CREATE TABLE settings (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]*$'),
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
