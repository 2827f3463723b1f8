"""What a run leaves on disk: its folder layout, lock and metrics.json reader (runs.py), metrics.json's
content (run_record.py), atomic writes and guarded checkpoint reads (storage.py), and the
provenance a result carries (provenance.py).
"""
