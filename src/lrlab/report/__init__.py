"""Plots (matplotlib, Agg backend) and the report a person looks at."""
