"""Evaluation of shipments (excursions, stability budget, MKT, hold time) and the alert lifecycle."""
