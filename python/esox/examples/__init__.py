"""Worked example applications: dog school, bank accounts, cargo shipping."""
