-- The PostgreSQL store. Documents are kept as JSON text (not jsonb) so key order survives,
-- as Elasticsearch clients see it.

-- One row once the profile "index" exists; next_seq_no is the store-wide _seq_no counter.
-- Every profile write locks this row first, so writes commit in _seq_no order.
CREATE TABLE profile_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    next_seq_no BIGINT NOT NULL
);

CREATE TABLE profiles (
    uid TEXT PRIMARY KEY,
    realm_type TEXT NOT NULL,
    username TEXT NOT NULL,
    seq_no BIGINT NOT NULL UNIQUE,
    primary_term BIGINT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE (realm_type, username)
);

CREATE TABLE users (
    username TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE roles (
    name TEXT PRIMARY KEY,
    doc TEXT NOT NULL
);

CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    refresh_digest TEXT UNIQUE,
    version BIGINT NOT NULL,
    doc TEXT NOT NULL
);
