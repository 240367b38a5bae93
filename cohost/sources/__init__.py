"""Sources: where events enter (recordings now; platform adapters produce the same events)."""
