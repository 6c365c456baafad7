"""Arrival forecasts: the pure core (`core`, `history`) and their storage (`store`)."""
