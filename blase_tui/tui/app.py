"""Placeholder replaced by the TUI work in this session."""
