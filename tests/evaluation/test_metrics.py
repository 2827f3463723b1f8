"""The continual-learning metrics against hand computations on a hand-made matrix."""

import numpy as np
import pytest

from hypermask.evaluation import metrics as M

# A[t, j]: accuracy on task j after task t. Task 0 peaks after task 1 (not on the diagonal),
# so forgetting (drop from the best) and BWT (drop from the diagonal) differ.
A = np.array([[70.0, 10.0, 20.0], [90.0, 80.0, 15.0], [60.0, 75.0, 85.0]])
R = np.array([10.0, 12.0, 11.0])


def test_metrics_on_a_hand_made_matrix():
    assert M.average_accuracy(A) == pytest.approx((60 + 75 + 85) / 3)
    assert M.backward_transfer(A) == pytest.approx(((60 - 70) + (75 - 80)) / 2)  # -7.5
    assert M.forgetting(A) == pytest.approx(((90 - 60) + (80 - 75)) / 2)  # 17.5
    assert M.forward_transfer(A, R) == pytest.approx(((10 - 12) + (15 - 11)) / 2)  # 1.0


def test_forgetting_ignores_the_rows_before_a_task_was_learned():
    # task 1 scored 95 before it was trained (row 0: an untrained mask that happens to fit);
    # that is not an accuracy it had and lost: only rows 1.. count for it
    B = np.array([[70.0, 95.0, 20.0], [70.0, 80.0, 15.0], [70.0, 80.0, 85.0]])
    assert M.forgetting(B) == pytest.approx(0.0)
    assert M.backward_transfer(B) == pytest.approx(0.0)


def test_one_task_has_no_transfer_or_forgetting():
    one = np.array([[42.0]])
    assert M.summary(one, np.array([5.0])) == {
        "average_accuracy": 42.0,
        "bwt": 0.0,
        "fwt": 0.0,
        "forgetting": 0.0,
    }
