"""The benchmark's own pieces stay correct (its figures are not tested: they are printed)."""

import orjson
import pytest

from dqhash.tools.bench.pipeline import MIX, sweep_ms, workload


def test_workload_mix_and_expected_classifications():
    onprem, cloud, classified = workload(1000, "t", 1_714_564_800_000)
    assert len(onprem) == 1000
    broken = sum(1 for _, value in onprem if not value.endswith(b"}"))
    assert broken == round(1000 * MIX["bad"])
    duplicates = len(onprem) - len(set(onprem))
    assert classified == 1000 - broken - duplicates
    assert len(cloud) == round(1000 * (MIX["match"] + MIX["mismatch"]))
    assert {orjson.loads(v)["action"] for _, v in onprem if v.endswith(b"}")} == {"UPDATE", "DELETE"}


def test_sweep_measures_a_tick_that_decides_every_due_pair():
    assert sweep_ms(held=2_000, due=100) > 0  # it asserts the 100 audit records itself


def test_the_domain_bench_reconciles_every_pair_it_times():
    from dqhash.tools.bench.domain import _reconcile_rate, sample_messages

    onprem, cloud = sample_messages(300)
    assert _reconcile_rate(onprem, cloud, batch=64) > 0
    with pytest.raises(RuntimeError, match="classified 0 of 300"):
        _reconcile_rate(onprem, [b"{}"] * 300, batch=64)  # cloud records that classify nothing
