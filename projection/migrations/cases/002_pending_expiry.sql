-- Expiries the ledger has yet to record (no CaseExpired yet): what the
-- expiry scheduler polls. cases_due_expiry also holds expired cases the bot
-- has not processed, which can pile up; this index holds only the pending.
CREATE INDEX cases_pending_expiry ON {{.schema}}.cases (expires_at)
    WHERE expires_at IS NOT NULL AND expired_at IS NULL AND NOT expiry_processed AND status = 'active' AND NOT deleted;
