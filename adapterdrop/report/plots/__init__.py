"""The report's plots, one module per plot: ``draw_*(records) -> matplotlib Figure`` from the records a
comparison selected (see :mod:`adapterdrop.report.comparisons`); :mod:`.style` holds what they share."""
