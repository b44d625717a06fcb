"""Scale-out: the library's joblib sweeps run unchanged on a dask.distributed cluster.

The test starts its own small local cluster (two single-threaded in-process workers), runs
a sweep under ``joblib.parallel_config(backend="dask")`` and checks that the result equals
the serial run exactly: every job carries its own seed, so results never depend on the
backend or the worker count.
"""

import distributed  # pinned in requirements.txt: a missing install fails here, not skips
import numpy as np
import pytest
from joblib import parallel_config

from shaprl.domains.simulators import taxi_simulator
from shaprl.sverl import collect_states


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
    assert len(stream.data) >= 2  # the jobs really ran on the cluster (joblib may batch them)
    assert len(client.scheduler_info()["workers"]) == 2
    np.testing.assert_array_equal(serial.features, on_dask.features)
    assert serial.episodes == on_dask.episodes and serial.truncated == on_dask.truncated


def test_continuous_rollout_sweep_on_dask_equals_serial(client):
    import gymnasium as gym

    from shaprl.agents import from_callable
    from shaprl.sverl.continuous import (
        ApproximateMonteCarloSVERL,
        ClassicControlSimulator,
        collect_visited,
    )

    def lean(o):
        right = (o[:, 2] + o[:, 3] >= 0).astype(float)
        return np.column_stack([0.9 - 0.8 * right, 0.1 + 0.8 * right])

    agent = from_callable(lean, n_actions=2, value=lambda o: -np.abs(o[:, 2]))
    sim = ClassicControlSimulator(lambda: gym.make("CartPole-v1").unwrapped)

    def run():
        sample = collect_visited(sim, agent, 600, seed=2, steps_per_job=200)
        mc = ApproximateMonteCarloSVERL(agent, sample, simulator=sim, horizon=100)
        return sample, mc.explain(sample[:2], "outcome", n_rollouts=4, seed=5)

    with parallel_config(backend="sequential"):
        s_serial, e_serial = run()
    with distributed.get_task_stream(client) as stream, parallel_config(backend="dask"):
        s_dask, e_dask = run()
    assert len(stream.data) >= 2  # jobs ran on the cluster (joblib may batch several per task)
    np.testing.assert_array_equal(s_serial, s_dask)
    np.testing.assert_array_equal(e_serial.results["outcome"].phi, e_dask.results["outcome"].phi)
