"""Evaluation: the settings registry (settings.py: with the task id, entropy, FeCAM, one-shot),
accuracy with and without the task id (accuracy.py), FeCAM (fecam.py) and the summary metrics of
an accuracy matrix (metrics.py: average accuracy, BWT, forgetting).
"""
