"""Scale-out: the library's joblib sweeps run unchanged on a dask.distributed cluster.

The test starts its own small local cluster (two single-threaded in-process workers), runs
a sweep under ``joblib.parallel_config(backend="dask")`` and checks that the result equals
the serial run exactly: every job carries its own seed, so results never depend on the
backend or the worker count.
"""

import numpy as np
import pytest
from joblib import parallel_config

from shaprl.domains.simulators import taxi_simulator
from shaprl.sverl import collect_states

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _uniform(rows: np.ndarray) -> np.ndarray:
    return np.full((len(rows), 6), 1 / 6)


def test_state_collection_sweep_on_dask_equals_serial(client):
    sim = taxi_simulator()
    kwargs = dict(seed=3, steps_per_job=300, max_episode_steps=200, progress=False)
    with parallel_config(backend="sequential"):
        serial = collect_states(sim, _uniform, 1_200, **kwargs)
    with distributed.get_task_stream(client) as stream, parallel_config(backend="dask"):
        on_dask = collect_states(sim, _uniform, 1_200, **kwargs)
    assert len(stream.data) >= 4  # the four jobs really ran on the cluster
    assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(serial.features, on_dask.features)
    assert serial.episodes == on_dask.episodes and serial.truncated == on_dask.truncated
