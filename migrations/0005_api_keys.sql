-- API keys: who may call the API, for which tenant, with which scopes.
-- Only crunch-server's auth module reads or writes this table.
--
-- A key is shown to its owner once, when it is created; only its SHA-256 is
-- stored, so a copy of this table lets no one call the API. The display
-- prefix (the key's first 12 characters) names the key in listings, logs
-- and revocations without revealing it.

CREATE TABLE api_keys (
    id           uuid PRIMARY KEY,
    tenant_id    uuid NOT NULL REFERENCES tenants (id),
    -- `crk_` and the first 8 characters of the key's random part.
    prefix       text NOT NULL,
    -- SHA-256 of the whole key. A key has at least 128 bits of entropy, so
    -- a plain hash (no salt, no stretching) cannot be reversed, and a
    -- lookup by hash needs no constant-time comparison.
    key_sha256   bytea NOT NULL,
    scopes       text[] NOT NULL,
    -- A label for people ("ci", "nightly export").
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL: never expires.
    expires_at   timestamptz,
    -- Set once, by a revocation; a revoked key never works again.
    revoked_at   timestamptz,
    -- Written at most once a minute per key, off the request path.
    last_used_at timestamptz,

    CONSTRAINT api_keys_prefix_unique UNIQUE (prefix),
    CONSTRAINT api_keys_sha256_unique UNIQUE (key_sha256),
    CONSTRAINT api_keys_prefix_form CHECK (prefix ~ '^crk_[0-9A-Za-z]{8}$'),
    CONSTRAINT api_keys_sha256_length CHECK (octet_length(key_sha256) = 32),
    -- A non-empty subset of the three scopes (`<@` is false for a NULL
    -- element).
    CONSTRAINT api_keys_scopes_known CHECK (
        cardinality(scopes) > 0
        AND scopes <@ ARRAY['read', 'write', 'admin']::text[]
    ),
    CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 200)
);

-- Listing a tenant's keys, newest first.
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at DESC);

-- Every server replica caches verified keys. Any change to a key that can
-- stop it working (a revocation, a new expiry or scopes, a deletion) is
-- announced on `crunch_keys` with the key's prefix, delivered at commit, so
-- every replica evicts it at once; replicas also re-read cached keys every
-- few seconds in case a notification is lost.
CREATE FUNCTION api_keys_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('crunch_keys', OLD.prefix);
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_changed
    AFTER UPDATE OF tenant_id, prefix, key_sha256, scopes, expires_at, revoked_at OR DELETE
    ON api_keys
    FOR EACH ROW
    EXECUTE FUNCTION api_keys_notify();
