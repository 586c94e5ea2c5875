"""esox: event sourcing for Python, with its hot paths in Rust."""
