"""The HYPERMASK_* environment variables are settings: typed and bounded as params.yaml's keys,
a bad one refused by name with exit 2 (the rule for every bad input) before any work, by the
installed command as by main()."""

import os
import subprocess

import pytest

from hypermask.cli.main import main
from hypermask.config import ConfigError
from hypermask.environment import read_environment

BAD = [
    ("HYPERMASK_CPUS_BUSY", "abc", "valid number"),
    ("HYPERMASK_CPUS_BUSY", "-0.5", "greater than or equal to 0"),
    ("HYPERMASK_CPUS_BUSY", str((os.cpu_count() or 1) + 1), "less than or equal to"),
    ("HYPERMASK_CPUS_BUSY", "nan", "finite number"),
    ("HYPERMASK_CUDA_GRAPHS", "yes", "'0' or '1'"),
    ("HYPERMASK_TORCH_OPTIM", "true", "'0' or '1'"),
    ("HYPERMASK_CUDA_GRAPH", "0", "not a variable the command reads"),  # a typo of CUDA_GRAPHS
]


@pytest.mark.parametrize("name,value,why", BAD, ids=[f"{n}={v}" for n, v, _ in BAD])
def test_a_bad_variable_is_refused_by_name(name, value, why):
    with pytest.raises(ConfigError) as e:
        read_environment({name: value, "PATH": "/bin"})
    assert f"environment variable {name}={value!r}: " in str(e.value) and why in str(e.value)


def test_values_are_read_as_their_types():
    env = read_environment({"HYPERMASK_CPUS_BUSY": "0.75", "HYPERMASK_TORCH_OPTIM": "1", "HOME": "/x"})
    assert env.cpus_busy == 0.75 and env.torch_optim == "1" and env.cuda_graphs == "1"
    assert read_environment({}).cpus_busy is None and read_environment({}).torch_optim == "0"


def test_torch_optim_0_means_off(monkeypatch):
    """Before, any non-empty value (`0` included) switched torch.optim on."""
    import torch

    from hypermask.optim import use_torch_optim

    monkeypatch.setenv("HYPERMASK_TORCH_OPTIM", "0")
    assert use_torch_optim() == (not hasattr(torch, "_fused_adam_"))
    monkeypatch.setenv("HYPERMASK_TORCH_OPTIM", "1")
    assert use_torch_optim()


def test_main_and_the_installed_command_exit_2(monkeypatch, capsys, tiny_params):
    monkeypatch.setenv("HYPERMASK_CPUS_BUSY", "abc")
    assert main(["--params", str(tiny_params), "list"]) == 2
    assert "environment variable HYPERMASK_CPUS_BUSY='abc'" in capsys.readouterr().err
    env = {**os.environ, "HYPERMASK_CPUS_BUSY": "-1"}
    for argv in (["list"], ["train", "tiny", "--seed", "1", "--no-tracking"]):
        r = subprocess.run(
            ["hypermask", "--params", str(tiny_params), *argv], env=env, capture_output=True, text=True
        )
        assert r.returncode == 2, r.stderr
        assert "HYPERMASK_CPUS_BUSY='-1': Input should be greater than or equal to 0" in r.stderr
        assert "Traceback" not in r.stderr
