-- The audit log keeps the name of the command that appended each event
-- (events.Envelope.Command), so a case's history shows it.
ALTER TABLE {{.schema}}.case_events ADD COLUMN command text;
