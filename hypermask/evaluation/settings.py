"""The evaluation settings, one record each: the only list of them. Torch-free (params.yaml's
validation reads it); config.py's schema, the capability checks, `hypermask evaluate --setting`,
metrics.json's and MLflow's keys, the tables' columns and the loop's dispatch are derived from
SETTINGS.

- til: the task id is given (the tables' protocol; every method, always computed);
- entropy: the task inferred per sample by the lowest softmax entropy over the tasks' models;
- fecam: class-incremental, FeCAM's class prototypes on the network's features;
- classil: a class-incremental method's own head, argmax over every class seen (no task id);
- oneshot: SupSup's one-shot task inference, one task per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hypermask.config import EvaluationConfig
    from hypermask.data.tasks import Task
    from hypermask.methods import Method
    from hypermask.methods.record import MethodRecord


@dataclass(frozen=True)
class Setting:
    name: str
    needs: (
        str | None
    )  # the capability it needs (a MethodRecord field): None, "task_inference", "class_incremental", "one_shot"
    metrics: tuple[str, ...]  # its per-task results in metrics.json, eval_SETTING.json and MLflow
    columns: tuple[tuple[str, str, str], ...]  # (final result key, table column, table title)
    compute: str | None  # "module:function" (learner, tasks, seen, evaluation config) -> results after a task

    def run(self, learner: Method, tasks: list[Task], seen: int, ev: EvaluationConfig) -> dict[str, Any]:
        assert self.compute is not None, (
            f"{self.name} is computed by the loop itself"
        )  # WITHOUT_TASK_ID's only
        module, fn = self.compute.split(":")
        results: dict[str, Any] = getattr(import_module(f"hypermask.{module}"), fn)(learner, tasks, seen, ev)
        return results


SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("til", None, (), (), None),
        Setting(
            "entropy",
            "task_inference",
            ("task_accuracy", "class_accuracy"),
            (
                ("final_task_accuracy", "entropy_task", "Task inferred by entropy: task accuracy (%)"),
                ("final_class_accuracy", "entropy_class", "Task inferred by entropy: class accuracy (%)"),
            ),
            "evaluation.accuracy:entropy_setting",
        ),
        Setting(
            "fecam",
            "task_inference",
            ("accuracy",),
            (("final_accuracy", "fecam", "Class-incremental, FeCAM (%)"),),
            "evaluation.fecam:fecam_setting",
        ),
        Setting(
            "classil",
            "class_incremental",
            ("task_accuracy", "class_accuracy"),
            (
                (
                    "final_class_accuracy",
                    "classil",
                    "Class-incremental, the method's own head over all classes seen (%)",
                ),
            ),
            "evaluation.accuracy:class_incremental_setting",
        ),
        Setting(
            "oneshot",
            "one_shot",
            ("task_accuracy", "class_accuracy"),
            (
                (
                    "final_task_accuracy",
                    "oneshot_task",
                    "Task inferred one-shot (SupSup, per batch of one task): task accuracy (%)",
                ),
                (
                    "final_class_accuracy",
                    "oneshot_class",
                    "Task inferred one-shot (SupSup, per batch of one task): class accuracy (%)",
                ),
            ),
            "evaluation.accuracy:oneshot_setting",
        ),
    )
}
WITHOUT_TASK_ID = tuple(n for n, s in SETTINGS.items() if s.compute)  # computed after each task when listed


def supported(name: str, entry: MethodRecord) -> bool:
    """Whether a method (its methods.Entry) can be evaluated in setting `name`."""
    needs = SETTINGS[name].needs
    return needs is None or bool(getattr(entry, needs))


def why_not(name: str, method: str) -> str:
    """Why `method` cannot be evaluated in setting `name`, in words."""
    needs = SETTINGS[name].needs
    assert needs is not None, f"{name} needs no capability"
    return {
        "task_inference": f"{method} has one model for every task on this benchmark (no head, mask or "
        "weights of a task's own), so entropy and FeCAM cannot tell the tasks apart",
        "one_shot": f"oneshot is SupSup's task inference, not {method}'s",
        "class_incremental": f"classil reads a class-incremental method's one head over all classes; {method} "
        "has a head, mask or model per task (its class-incremental figure is entropy's class accuracy)",
    }[needs]
