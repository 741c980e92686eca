"""run_sweep(executor="dask") on a LocalCluster of 2 worker processes, one killed mid-sweep."""

from __future__ import annotations

import json

import pytest

distributed = pytest.importorskip("distributed")

from slth.errors import InputError  # noqa: E402
from slth.sweeps import run_sweep  # noqa: E402


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_rows_equal_local_rows_and_survive_a_killed_worker(client, tmp_path):
    marker = tmp_path / "killed-once"

    def task(config, rng):
        import os

        if config["i"] == 3 and not marker.exists():
            marker.write_text("x")
            os._exit(1)  # the worker dies mid-sweep; the scheduler reruns the row elsewhere
        return {"draw": float(rng.standard_normal()), "i": config["i"]}

    configs = [{"task": "dask-test", "i": i} for i in range(8)]
    marker.write_text("x")  # no kill in this process
    local = run_sweep(task, configs, path=tmp_path / "local.jsonl", rng=5)
    marker.unlink()
    dask = run_sweep(task, configs, path=tmp_path / "dask.jsonl", rng=5, executor="dask",
                     client=client)
    assert marker.exists()  # the kill happened
    assert [r.result for r in dask.rows] == [r.result for r in local.rows]
    lines = (tmp_path / "dask.jsonl").read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 8  # exactly one row per (configuration, seed)
    # resumed on the cluster: nothing recomputed
    again = run_sweep(task, configs, path=tmp_path / "dask.jsonl", rng=5, executor="dask",
                      client=client)
    assert again.computed == 0 and again.reused == 8


def test_dask_executor_arguments_are_checked(tmp_path):
    with pytest.raises(InputError, match="`client`"):
        run_sweep(lambda c, r: 0, [{"i": 0}], path=None, executor="dask")
    with pytest.raises(InputError, match="`executor`"):
        run_sweep(lambda c, r: 0, [{"i": 0}], path=None, executor="ray")
    with pytest.raises(InputError, match="`client`"):
        run_sweep(lambda c, r: 0, [{"i": 0}], path=None, executor="dask", client=3)
