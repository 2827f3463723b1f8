"""The prepared cache (data/prepared.py): what `hypermask prepare` writes is the source itself,
training on it gives the run training on the raw source gives, and a cache whose checksum file
is missing or garbled, or that was prepared from another data.root, stops by path (exit status
2 through the command) before anything is written. (A cache whose bytes do not match its
checksum: tests/records/test_faults.py.)"""

import copy
import json

import numpy as np
import pytest
import yaml

from conftest import TINY, write_params
from hypermask.cli.main import main
from hypermask.config import ConfigError, load_experiment
from hypermask.data.prepared import FIELDS, load_prepared, prepared_path
from hypermask.data.sources import load_source


@pytest.fixture
def cached(tmp_path):
    """A tiny params file whose pipeline.data_cache is a folder of this test, and the prepared digits in it."""
    raw = copy.deepcopy(TINY)
    raw["benchmarks"]["tiny"]["train"]["iterations"] = 20
    raw["pipeline"] = {"data_cache": str(tmp_path / "cache")}
    params = write_params(tmp_path / "params.yaml", raw)
    assert main(["--params", str(params), "prepare", "tiny"]) == 0
    return params, load_experiment(params, "tiny/hypermask").data, tmp_path / "cache"


def _train(params, results):
    return main(
        ["--params", str(params), "train", "tiny", "--seed", "1", "--results", str(results)]
        + ["--no-tracking", "--quiet"]
    )


def test_the_prepared_source_is_the_raw_source(cached):
    params, data, cache = cached
    got, raw = load_prepared(data, cache), load_source(data)
    for f in FIELDS:
        assert (
            np.array_equal(getattr(got, f), getattr(raw, f))
            and getattr(got, f).dtype == getattr(raw, f).dtype
        )
    meta = json.loads(prepared_path(cache, "digits").with_suffix(".json").read_text())
    assert meta["source"] == "digits" and meta["train"] == list(raw.x_train.shape)
    assert load_prepared(data, None) is None and load_prepared(data, cache / "elsewhere") is None


def test_training_on_the_prepared_cache_equals_training_on_the_raw_source(cached, tmp_path):
    params, _, cache = cached
    assert _train(params, tmp_path / "from_cache") == 0
    raw = yaml.safe_load(params.read_text())
    raw["pipeline"]["data_cache"] = str(tmp_path / "empty")  # no prepared file: the raw source is read
    plain = write_params(tmp_path / "plain.yaml", raw)
    assert _train(plain, tmp_path / "from_source") == 0
    a, b = (
        json.loads((tmp_path / r / "runs/tiny/hypermask/seed_1/metrics.json").read_text())
        for r in ("from_cache", "from_source")
    )
    assert (
        a["accuracy_matrix"] == b["accuracy_matrix"]
        and a["random_init_accuracy"] == b["random_init_accuracy"]
    )


@pytest.mark.parametrize("sidecar", [None, '{"sha256": "ab', "[]"], ids=["missing", "torn", "not-an-object"])
def test_a_cache_without_a_readable_checksum_file_is_refused_by_path(cached, tmp_path, capsys, sidecar):
    params, data, cache = cached
    meta = prepared_path(cache, "digits").with_suffix(".json")
    if sidecar is None:
        meta.unlink()
    else:
        meta.write_text(sidecar)
    with pytest.raises(ConfigError) as e:
        load_prepared(data, cache)
    assert str(e.value) == f"{meta}: missing or unreadable checksum file; run `hypermask prepare` again"
    assert _train(params, tmp_path / "r") == 2
    err = capsys.readouterr().err
    assert f"{meta}: missing or unreadable checksum file" in err and "Traceback" not in err
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]  # nothing written, no lock left


def test_a_cache_prepared_from_another_data_root_is_refused(cached, tmp_path, capsys):
    params, data, cache = cached
    meta_path = prepared_path(cache, "digits").with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "root": "/srv/other-digits"}))
    npz = prepared_path(cache, "digits")
    with pytest.raises(ConfigError) as e:
        load_prepared(data, cache)
    assert str(e.value).startswith(
        f"{npz}: prepared from data.root '/srv/other-digits', but the experiment reads {data.root!r}"
    )
    assert _train(params, tmp_path / "r") == 2
    assert "prepared from data.root '/srv/other-digits'" in capsys.readouterr().err
    assert not [f for f in (tmp_path / "r").rglob("*") if f.is_file()]  # nothing written, no lock left
    assert main(["--params", str(params), "prepare", "tiny"]) == 0  # what the message says to do
    assert load_prepared(data, cache) is not None
