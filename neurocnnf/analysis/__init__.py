"""Analyses on activation datasets: RSA, CKA, encoding (PLS/ridge), recurrence vs difficulty."""
