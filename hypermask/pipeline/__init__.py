"""The pipeline's side: the plan of jobs both Snakemake and DVC run (plan.py: dvc.yaml, the
process environment of jobs) and the preflight checks of the tracking server and study storage.
"""
