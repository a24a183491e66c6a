"""Thin shell over nas/ (see README)."""
