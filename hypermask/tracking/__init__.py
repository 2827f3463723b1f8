"""MLflow: which store (store.py), a run's tracker with retries and buffered logging (tracker.py), and the
training loop's subscriber that logs each task exactly once (sink.py)."""
