"""Reading YAML settings files (config/files.py and read_params): what a file that cannot be
taken stops with. Every case names the file (and the key or line); through the command, exit
status 2 and no traceback, before any run folder is made."""

import copy

import pytest
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config import ConfigError, load_yaml, parse_params, read_overrides


def _train(params, tmp_path, *extra):
    return main(
        ["--params", str(params), "train", "tiny", "--seed", "1", "--results", str(tmp_path / "res")]
        + ["--no-tracking", "--quiet", *extra]
    )


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path, capsys):
    """PyYAML alone keeps the last of two equal keys; the loader refuses the file instead."""
    text = yaml.safe_dump(TINY, sort_keys=False) + "suite: demo\n"  # `suite` again, on the last line
    p = tmp_path / "params.yaml"
    p.write_text(text)
    last = len(text.splitlines())
    with pytest.raises(ConfigError) as e:
        load_yaml(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: not valid YAML") and "found duplicated key 'suite' (first at line 1)" in msg
    assert f"line {last}" in msg  # where the second one is
    assert _train(p, tmp_path) == 2
    err = capsys.readouterr().err
    assert "duplicated key 'suite'" in err and "Traceback" not in err
    assert not (tmp_path / "res").exists()


def test_a_key_written_twice_deeper_down_is_refused_too(tmp_path):
    p = tmp_path / "o.yaml"
    p.write_text("train:\n  lr: 0.1\n  batch_size: 8\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"duplicated key 'lr' \(first at line 2\)"):
        load_yaml(p)


def test_a_file_that_is_not_utf8_text_is_named_not_a_traceback(tmp_path, capsys):
    """A binary file, or one saved in Latin-1, where params.yaml or an override file is expected."""
    p = tmp_path / "params.yaml"
    p.write_bytes(yaml.safe_dump(TINY).encode() + "# beta: 5·10⁻³\n".encode("latin-1", "replace") + b"\xff\n")
    assert main(["--params", str(p), "list"]) == 2
    err = capsys.readouterr().err
    assert f"{p}: not UTF-8 text" in err and "Traceback" not in err
    with pytest.raises(ConfigError, match=f"{p}: not UTF-8 text"):
        load_yaml(p)
    good = write_params(tmp_path / "good.yaml", copy.deepcopy(TINY))
    assert _train(good, tmp_path, "--override", str(p)) == 2  # the override file's reader
    assert f"{p}: not UTF-8 text" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_a_folder_or_a_missing_file_is_no_such_file(tmp_path):
    (tmp_path / "best_params.yaml").mkdir()
    for path in (tmp_path / "best_params.yaml", tmp_path / "none.yaml"):
        with pytest.raises(ConfigError, match=f"^{path}: no such file"):
            load_yaml(path)


@pytest.mark.parametrize(
    "text",
    ["- 0.1\n- 0.2\n", "just a string\n", "{1: 0.1}\n", ""],
    ids=["list", "scalar", "int-key", "empty"],
)
def test_overrides_must_be_a_mapping_of_dotted_keys(tmp_path, capsys, text):
    o = tmp_path / "best_params.yaml"
    o.write_text(text)
    with pytest.raises(ConfigError, match=f"^{o}: overrides must be a mapping of dotted keys to values$"):
        read_overrides(o)
    params = write_params(tmp_path / "params.yaml", copy.deepcopy(TINY))
    assert _train(params, tmp_path, "--override", str(o)) == 2
    assert f"{o}: overrides must be a mapping" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_overrides_are_read_as_yaml_1_2(tmp_path):
    o = tmp_path / "best_params.yaml"
    o.write_text("hypermask.beta: 1e-3\ntrain.lr: .5\nhypermask.sparsity: 30\n")
    assert read_overrides(o) == {"hypermask.beta": 1e-3, "train.lr": 0.5, "hypermask.sparsity": 30}


def test_a_name_that_cannot_name_a_folder_is_refused_with_its_place():
    raw = copy.deepcopy(TINY)
    raw["benchmarks"]["tiny mnist"] = raw["benchmarks"].pop("tiny")
    with pytest.raises(ConfigError) as e:
        parse_params(raw, "p.yaml")
    assert "p.yaml.benchmarks: name 'tiny mnist' is not allowed: use letters, digits and _" in str(e.value)
