-- Outbound delivery settings shared by every delivery worker: routes (per-domain next hops),
-- the optional relayer (smarthost) and the DKIM signing keys of hosted domains.

-- A route sends mail for one domain (or, with a leading "*.", its subdomains) to a fixed host
-- instead of its MX. Routes are consulted only for recipients not hosted here.
CREATE TABLE routes (
    domain          text PRIMARY KEY CHECK (domain = lower(domain) AND domain LIKE '%.%'),
    host            text NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    port            integer NOT NULL DEFAULT 25 CHECK (port BETWEEN 1 AND 65535),
    -- required: STARTTLS with a verified certificate or no delivery; optional: STARTTLS when
    -- offered; none: never.
    tls             text NOT NULL DEFAULT 'optional' CHECK (tls IN ('required', 'optional', 'none')),
    username        text NULL,
    password        text NULL,
    -- NULL: the worker's defaults (delivery.retries, delivery.retry_minutes).
    retries         integer NULL CHECK (retries BETWEEN 0 AND 1000),
    retry_minutes   integer NULL CHECK (retry_minutes BETWEEN 1 AND 10080),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((username IS NULL) = (password IS NULL))
);

-- At most one row: when present, every remote recipient without a route goes through it.
CREATE TABLE relayer (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    host            text NOT NULL CHECK (length(host) BETWEEN 1 AND 253),
    port            integer NOT NULL DEFAULT 25 CHECK (port BETWEEN 1 AND 65535),
    tls             text NOT NULL DEFAULT 'optional' CHECK (tls IN ('required', 'optional', 'none')),
    username        text NULL,
    password        text NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((username IS NULL) = (password IS NULL))
);

-- One signing key per hosted domain (RSA-2048, PKCS#8 DER). Removing the domain removes it.
CREATE TABLE dkim_keys (
    domain_id       bigint PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    selector        text NOT NULL CHECK (selector ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'),
    private_key     bytea NOT NULL,
    public_key      bytea NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
