"""Brain-Score adapter: CNN-F as a BrainModel (iterations -> time bins), plugin export and scoring,
and benchmarks from the real Algonauts 2019 RDMs (``rdm_benchmark``, exported as a plugin).

The only part of neurocnnf that imports ``brainscore_vision`` (install with ``make brainscore``).
``unrolled`` and ``regions`` are plain torch/python and import without it.
"""
