"""Figures (seaborn), saved as files, all in the one look of :mod:`neurocnnf.viz.style`."""
