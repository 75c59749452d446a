"""The performance regression gate (``adapterdrop regress``; docs/regress.md).

- :mod:`~adapterdrop.regress.rules`: the comparison rules (exact, interval, Mann-Whitney shift);
- :mod:`~adapterdrop.regress.stats`: the exact Mann-Whitney U test and interval separation;
- :mod:`~adapterdrop.regress.baseline`: the baseline file and the minimum effect derived from repeats;
- :mod:`~adapterdrop.regress.checks`: records against a baseline, row by row;
- :mod:`~adapterdrop.regress.table`: the table as text, markdown and JSON;
- :mod:`~adapterdrop.regress.gate`: measuring now, re-measuring suspects, updating the baseline (torch);
- :mod:`~adapterdrop.regress.ab` and ``ab_worker.py``: ``--against REV`` in alternating processes;
- :mod:`~adapterdrop.regress.calibrate`: the false-alarm and detection campaign.

Only ``gate`` imports torch; the rest reads and judges numbers.
"""
