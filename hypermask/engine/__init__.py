"""The training engine, in the order a run goes through it: run.py (one (experiment, seed): resume,
lock, outputs) -> loop.py (seeding, the task stream and learner, one task's training) -> step.py
(one optimisation step; graphs.py replays it from a CUDA graph) -> checkpoint.py (the state
after each task); posthoc.py evaluates a finished run's checkpoints in another setting.
"""
