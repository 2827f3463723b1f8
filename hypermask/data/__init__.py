"""Data: the raw datasets (sources.py), the task streams built from them, permuted or split, and
the training batches (tasks.py), and the prepared-source cache (prepared.py).
"""
