"""Helpers for tests that run the real parts on 127.0.0.1 (never imported at run time)."""
