"""Analyses: RSA, CKA, encoding (PLS/ridge), recurrence vs difficulty, predictive coding."""
