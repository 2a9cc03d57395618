-- Issue 17: which package each ONU was sent ("full", "delta from V1.0",
-- "full (delta refused)"), as its controller reports it. NULL: nothing sent yet.
ALTER TABLE results ADD COLUMN package TEXT;
