-- Until when a worker holds a recipient (set by a claim, extended by a renewal, cleared when the
-- attempt is recorded). Queue administration uses it to leave recipients in flight alone: a
-- "retry now" must not hand a recipient to a second worker while the first is delivering it.
ALTER TABLE queue_recipients ADD COLUMN leased_until timestamptz NULL;
