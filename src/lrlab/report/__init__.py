"""Plots and the report a person looks at.

Plots use matplotlib's object API (``Figure``), never pyplot, so importing lrlab leaves the backend alone.
"""
