"""Helpers for the reliability suite (tests/test_reliability_*.py); see docs/RELIABILITY.md."""
