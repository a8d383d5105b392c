"""Analyses: RSA, CKA, recurrence vs difficulty, predictive coding."""
