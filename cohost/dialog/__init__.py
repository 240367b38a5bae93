"""Dialog: turning decisions into replies."""
