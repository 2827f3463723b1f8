"""Staged outputs: how one pipeline job trains several seeds while each seed keeps its own job.

A benchmark in pipeline.seeds_in_one_job gets one job per (benchmark, method) that trains its
seeds one after another in one process (`hypermask train B --method M --seed 1 2 3 --stage`):
torch and MLflow are loaded once, not once per seed. Each seed's three outputs go under
seed_N/staged/; the seed's own job (the same outputs, rerun and log as without grouping) then
adopts them, a rename each, or trains the seed itself when nothing is staged (a forced rerun
of one seed, a seed added later). Standard library only: the adopting job starts in about
0.05 s, where loading torch takes 2.

The seeds job is an input of every seed's job; an existing one never reruns a seed's job by
itself (Snakemake's `ancient`, and `update`, which keeps it through a failed rerun). A missing
one does: where seeds already have outputs (pulled by DVC into a new clone, or trained before
the benchmark was in seeds_in_one_job) and another seed needs training, Snakemake reruns every
seed's job after the seeds job. That job is then told `--stage-current` and stages the current
seeds' outputs too (hard links), which their jobs adopt instead of training them again. A
copy no job adopted (its seed was not a target) is dropped when Snakemake ends, and before the
first job of the next one, for a Snakemake that was killed (drop_copies_of_current, the
workflow's onsuccess, onerror and onstart): left, it would be adopted by a later forced rerun
of that seed instead of training it.

    python -m hypermask.records.staging RUN_DIR   # exit 0: adopted; 1: nothing staged
"""

from __future__ import annotations

import filecmp
import os
import shutil
import sys
from pathlib import Path

STAGED = "staged"  # seed_N/staged/
OUTPUTS = ("accuracy_matrix.csv", "accuracy_matrix.png", "metrics.json")  # metrics.json last


def adopt_staged(root: str | Path) -> bool:
    """Move a run's staged outputs into place: the matrix files, then metrics.json (a rename
    each, so a reader never sees a half-written file and metrics.json appears last); True if
    staged outputs were there. Only these files are moved; the folder goes once empty."""
    staged = Path(root) / STAGED
    if not (staged / "metrics.json").is_file():
        return False
    for name in OUTPUTS:
        if (staged / name).exists():
            os.replace(staged / name, Path(root) / name)
    try:
        staged.rmdir()
    except OSError:  # not empty: something else was put there; leave it
        pass
    return True


def stage_copy(root: str | Path) -> None:
    """Stage a run's current outputs as they are (hard links where the filesystem has them)."""
    staged = Path(root) / STAGED
    staged.mkdir(exist_ok=True)
    for name in OUTPUTS:
        src, dst = Path(root) / name, staged / name
        if src.exists():
            tmp = dst.with_name(dst.name + ".tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copy2(src, tmp)
            os.replace(tmp, dst)


def drop_copies_of_current(root: str | Path) -> bool:
    """Remove a run's staged outputs where they are its current outputs themselves (the hard
    links or copies of --stage-current that no job adopted); True if some were removed. Staged
    outputs that differ from the current ones (a seed trained by the seeds job, not adopted
    yet) are kept."""
    staged = Path(root) / STAGED
    if not (staged / "metrics.json").is_file():
        return False
    pairs = [(staged / name, Path(root) / name) for name in OUTPUTS if (staged / name).exists()]
    if not all(
        cur.exists() and (os.path.samefile(st, cur) or filecmp.cmp(st, cur, shallow=False))
        for st, cur in pairs
    ):
        return False
    for st, _ in reversed(pairs):  # metrics.json first: an adopter stops seeing it at once
        st.unlink()
    try:
        staged.rmdir()
    except OSError:
        pass
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m hypermask.records.staging RUN_DIR", file=sys.stderr)
        return 2
    if not adopt_staged(argv[0]):
        return 1
    print(f"{argv[0]}: outputs adopted from {Path(argv[0]) / STAGED} (trained by the experiment's seeds job)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
