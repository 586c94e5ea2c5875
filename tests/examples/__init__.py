"""Examples that serve the tests and docs only (not shipped in the wheel)."""
