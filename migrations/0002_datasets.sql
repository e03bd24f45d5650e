-- Datasets: the metadata of data uploaded by clients. The data itself lives
-- in the object store as Parquet files, one per part; these tables say which
-- files make up a dataset. Only the crunch-store crate reads or writes them.

CREATE TABLE datasets (
    -- UUIDv7 minted by crunch-store: time-ordered, so listing newest first
    -- is an index scan and a cursor is just the last id seen.
    id         uuid PRIMARY KEY,
    tenant_id  uuid NOT NULL REFERENCES tenants (id),
    -- A label for people; not unique, datasets are addressed by id.
    name       text NOT NULL,
    -- The Arrow schema every part conforms to, in crunch-store's own stable
    -- form: [{"name", "data_type", "nullable"}, ...]. Appends are checked
    -- against it, and workers read it without opening a Parquet footer.
    schema     jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Bumped by every append.
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT datasets_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    CONSTRAINT datasets_schema_is_array CHECK (jsonb_typeof(schema) = 'array'),
    -- The target of dataset_parts' foreign key, which ties a part's tenant to
    -- its dataset's; also the index for listing a tenant's datasets by id.
    CONSTRAINT datasets_tenant_id UNIQUE (tenant_id, id)
);

-- One row per Parquet file of a dataset. A row exists only once its object
-- has been uploaded completely (the insert follows the upload), so whatever
-- a reader sees here is readable: an append is all of its rows or none.
CREATE TABLE dataset_parts (
    -- UUIDv7: parts are read in the order they were added.
    id          uuid PRIMARY KEY,
    dataset_id  uuid NOT NULL,
    -- Repeated from the dataset so that every query can filter by tenant, and
    -- tied to it by the composite foreign key so that it cannot disagree.
    tenant_id   uuid NOT NULL,
    -- Relative to the store's prefix (tenants/<t>/datasets/<d>/parts/<p>.parquet),
    -- so a bucket or directory can be moved without rewriting rows.
    object_path text NOT NULL,
    rows        bigint NOT NULL,
    -- Size of the Parquet file.
    bytes       bigint NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),

    -- Deleting a dataset deletes its parts' rows in the same statement; the
    -- objects are removed after the commit (an orphaned file is harmless, a
    -- row naming a missing file is not).
    CONSTRAINT dataset_parts_dataset FOREIGN KEY (tenant_id, dataset_id)
        REFERENCES datasets (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT dataset_parts_rows_positive CHECK (rows > 0),
    CONSTRAINT dataset_parts_bytes_positive CHECK (bytes > 0)
);

-- A dataset's parts in order: reading, totals, deleting.
CREATE INDEX dataset_parts_by_dataset ON dataset_parts (dataset_id, id);
