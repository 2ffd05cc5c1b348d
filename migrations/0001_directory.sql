-- Directory: hosted domains, their alias names, accounts, aliases, distribution lists.
-- The addresses of objects are stored in their lookup form: local part lower-cased, domain in
-- lower-case ASCII (A-labels), as produced by mc_types::EmailAddress::lookup_key. Addresses that
-- point elsewhere (alias targets, forwards, list members, catch-all) keep the spelling given.

CREATE TABLE domains (
    id                         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                       text NOT NULL UNIQUE CHECK (name = lower(name) AND name LIKE '%.%'),
    active                     boolean NOT NULL DEFAULT true,
    -- 0 means "no limit of its own" for every limit below.
    max_message_size_bytes     bigint NOT NULL DEFAULT 0 CHECK (max_message_size_bytes >= 0),
    max_size_bytes             bigint NOT NULL DEFAULT 0 CHECK (max_size_bytes >= 0),
    max_account_size_bytes     bigint NOT NULL DEFAULT 0 CHECK (max_account_size_bytes >= 0),
    max_accounts               integer NOT NULL DEFAULT 0 CHECK (max_accounts >= 0),
    max_aliases                integer NOT NULL DEFAULT 0 CHECK (max_aliases >= 0),
    max_lists                  integer NOT NULL DEFAULT 0 CHECK (max_lists >= 0),
    catch_all                  text NULL,
    plus_addressing            boolean NOT NULL DEFAULT false,
    plus_separator             text NOT NULL DEFAULT '+' CHECK (plus_separator IN ('+', '-', '_', '=', '#', '%')),
    greylisting                boolean NOT NULL DEFAULT true,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now()
);

-- Extra names of a domain: mail to user@alias reaches user@domain, and users may log in with it.
CREATE TABLE domain_aliases (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id   bigint NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    name        text NOT NULL UNIQUE CHECK (name = lower(name) AND name LIKE '%.%'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX domain_aliases_domain_id ON domain_aliases (domain_id);

CREATE TABLE accounts (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id             bigint NOT NULL REFERENCES domains (id) ON DELETE RESTRICT,
    address               text NOT NULL UNIQUE,
    password_hash         text NOT NULL,
    active                boolean NOT NULL DEFAULT true,
    quota_bytes           bigint NOT NULL DEFAULT 0 CHECK (quota_bytes >= 0),  -- 0 = unlimited
    used_bytes            bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    admin_level           smallint NOT NULL DEFAULT 0 CHECK (admin_level IN (0, 1, 2)),  -- user, domain, server
    first_name            text NOT NULL DEFAULT '',
    last_name             text NOT NULL DEFAULT '',
    forward_enabled       boolean NOT NULL DEFAULT false,
    forward_address       text NULL,
    forward_keep_copy     boolean NOT NULL DEFAULT true,
    autoreply_enabled     boolean NOT NULL DEFAULT false,
    autoreply_subject     text NOT NULL DEFAULT '',
    autoreply_body        text NOT NULL DEFAULT '',
    autoreply_expires_at  timestamptz NULL,
    last_login_at         timestamptz NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK (NOT forward_enabled OR forward_address IS NOT NULL)
);
CREATE INDEX accounts_domain_id ON accounts (domain_id);

-- One address redirected to exactly one target (account, alias, list or external address).
CREATE TABLE aliases (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id   bigint NOT NULL REFERENCES domains (id) ON DELETE RESTRICT,
    address     text NOT NULL UNIQUE,
    target      text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX aliases_domain_id ON aliases (domain_id);
-- Targets keep their spelling (external local parts may be case-sensitive); lookups fold case.
CREATE INDEX aliases_target ON aliases (lower(target));

CREATE TABLE distribution_lists (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    domain_id          bigint NOT NULL REFERENCES domains (id) ON DELETE RESTRICT,
    address            text NOT NULL UNIQUE,
    active             boolean NOT NULL DEFAULT true,
    -- public: anyone may post; membership: only members; announcement: only announce_address.
    mode               text NOT NULL DEFAULT 'public' CHECK (mode IN ('public', 'membership', 'announcement')),
    announce_address   text NULL,
    require_auth       boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (mode <> 'announcement' OR announce_address IS NOT NULL)
);
CREATE INDEX distribution_lists_domain_id ON distribution_lists (domain_id);

CREATE TABLE distribution_list_members (
    list_id     bigint NOT NULL REFERENCES distribution_lists (id) ON DELETE CASCADE,
    address     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, address)
);
CREATE INDEX distribution_list_members_address ON distribution_list_members (lower(address));

-- A name is either a domain or a domain alias, never both; an address is an account, an alias or
-- a list, never two of them. UNIQUE cannot span tables, so triggers check it, serialised per name
-- by an advisory lock so that two concurrent inserts of one name cannot both pass.
CREATE FUNCTION reject_domain_name_clash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('domain-name:' || NEW.name, 0));
    IF (TG_TABLE_NAME = 'domains' AND EXISTS (SELECT 1 FROM domain_aliases WHERE name = NEW.name))
       OR (TG_TABLE_NAME = 'domain_aliases' AND EXISTS (SELECT 1 FROM domains WHERE name = NEW.name)) THEN
        RAISE EXCEPTION 'the name % is already in use', NEW.name
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'domain_name_in_use';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER domains_name_clash BEFORE INSERT OR UPDATE OF name ON domains
    FOR EACH ROW EXECUTE FUNCTION reject_domain_name_clash();
CREATE TRIGGER domain_aliases_name_clash BEFORE INSERT OR UPDATE OF name ON domain_aliases
    FOR EACH ROW EXECUTE FUNCTION reject_domain_name_clash();

CREATE FUNCTION reject_address_clash() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('address:' || NEW.address, 0));
    IF (TG_TABLE_NAME <> 'accounts' AND EXISTS (SELECT 1 FROM accounts WHERE address = NEW.address))
       OR (TG_TABLE_NAME <> 'aliases' AND EXISTS (SELECT 1 FROM aliases WHERE address = NEW.address))
       OR (TG_TABLE_NAME <> 'distribution_lists'
           AND EXISTS (SELECT 1 FROM distribution_lists WHERE address = NEW.address)) THEN
        RAISE EXCEPTION 'the address % is already in use', NEW.address
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'address_in_use';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER accounts_address_clash BEFORE INSERT OR UPDATE OF address ON accounts
    FOR EACH ROW EXECUTE FUNCTION reject_address_clash();
CREATE TRIGGER aliases_address_clash BEFORE INSERT OR UPDATE OF address ON aliases
    FOR EACH ROW EXECUTE FUNCTION reject_address_clash();
CREATE TRIGGER distribution_lists_address_clash BEFORE INSERT OR UPDATE OF address ON distribution_lists
    FOR EACH ROW EXECUTE FUNCTION reject_address_clash();
