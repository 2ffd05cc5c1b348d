-- Small message bodies accepted together are packed into one object (group commit at the
-- ingress): a message is the byte range [blob_offset, blob_offset + size_bytes) of its blob.
-- A message stored alone starts at offset 0 and spans its whole blob, as before.
ALTER TABLE messages
    ADD COLUMN blob_offset bigint NOT NULL DEFAULT 0 CHECK (blob_offset >= 0);
