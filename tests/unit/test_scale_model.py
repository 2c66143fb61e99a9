"""The scale model behind docs/scale.md (benchmarks/scale_model.py): repeatable for a seed, the
burst figures the issue asks for, and the checked-in table is the one it produces."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCALE_DOC = ROOT / "docs" / "scale.md"


@pytest.fixture(scope="module")
def model() -> Iterator[ModuleType]:
    """benchmarks/scale_model.py, loaded from its file (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location("scale_model", ROOT / "benchmarks/scale_model.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_model"] = module  # dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("scale_model", None)


@pytest.fixture(scope="module")
def block(model: ModuleType) -> str:
    return "\n".join(model.report())


def test_the_same_seed_gives_the_same_figures_and_another_seed_other_ones(
    model: ModuleType,
) -> None:
    scenario = model.Scenario(100, cache=True, lifetime_s=300.0)
    first = model.simulate(scenario)
    assert model.simulate(scenario) == first
    other = model.simulate(scenario, model.Assumptions(seed=21))
    assert other != first


def test_with_the_cache_a_burst_of_1000_costs_at_most_two_token_requests(
    model: ModuleType,
) -> None:
    for changes in ({}, {"arrival": "ramp"}):
        result = model.simulate(model.Scenario(1000, cache=True, day=False, **changes))
        assert 1 <= result.first_minute <= 2, changes
        assert result.fallbacks == 0
        assert result.throttled == 0
        assert result.peak_reads_per_s < model.Assumptions().partition_rcu_per_s


def test_a_killed_lease_holder_is_taken_over_with_two_mints_when_throttled_reads_wait(
    model: ModuleType,
) -> None:
    waits = model.Assumptions(throttled_read_waits=True)
    result = model.simulate(model.Scenario(1000, cache=True, day=False, holder_dies=True), waits)
    assert result.first_minute == 2
    assert result.fallbacks == 0
    lease = waits.lease_s * 1000
    assert lease < result.wait_p95_ms < lease + 1000  # the lease ran out, then the takeover


@pytest.mark.parametrize("envs", [10, 100, 1000])
def test_without_the_cache_every_cold_environment_mints(model: ModuleType, envs: int) -> None:
    result = model.simulate(model.Scenario(envs, cache=False, day=False))
    assert result.first_minute == envs
    assert result.reads_per_hour == result.kms_per_hour == 0


def test_the_day_keeps_steady_state_at_about_one_mint_per_token_lifetime(
    model: ModuleType,
) -> None:
    with_cache = model.simulate(model.Scenario(1000, cache=True))
    without = model.simulate(model.Scenario(1000, cache=False))
    assert with_cache.steady_per_hour <= 2
    assert with_cache.deploy_minute == 0  # the new environments find the current token
    assert without.steady_per_hour >= 1000
    assert without.deploy_minute == 1000


def test_docs_scale_md_holds_the_block_the_model_generates(model: ModuleType, block: str) -> None:
    text = SCALE_DOC.read_text(encoding="utf-8")
    assert model.replace_block(text, block) == text, (
        "docs/scale.md is stale: python benchmarks/scale_model.py --markdown docs/scale.md"
    )


def test_only_the_marked_block_is_replaced(model: ModuleType, tmp_path: Path, block: str) -> None:
    target = tmp_path / "scale.md"
    target.write_text(f"# head\n\n{model.BEGIN}\nold\n{model.END}\n\ntail\n", encoding="utf-8")
    model.write_markdown(target, block=block)
    assert target.read_text(encoding="utf-8") == f"# head\n\n{block}\n\ntail\n"
    target.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="SCALE-MODEL"):
        model.write_markdown(target)  # refused before the model runs
