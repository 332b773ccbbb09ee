-- wa-store-pg schema version 1: the engine stores of many sessions in one database.
-- One row per store (session) with the fencing epoch; one row per (store, raw key).
CREATE TABLE wa_stores (
    name  TEXT PRIMARY KEY,
    -- Grows by one each time a node takes the session over; a write carrying an older
    -- epoch is refused (issue "Past one machine": session leases with fencing).
    epoch BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE wa_kv (
    store TEXT  NOT NULL REFERENCES wa_stores (name) ON DELETE CASCADE,
    key   BYTEA NOT NULL,
    value BYTEA NOT NULL,
    PRIMARY KEY (store, key)
);
