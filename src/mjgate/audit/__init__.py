"""What administrators did, kept beside its effect (audit_log)."""
