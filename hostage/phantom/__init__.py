"""Synthetic CT phantoms with HO of known maturity."""
