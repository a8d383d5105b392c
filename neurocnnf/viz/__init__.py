"""Figures (seaborn), saved as files."""
