"""Shared fixtures: synthetic worlds are generated once per test session."""

from pathlib import Path

import pytest

import arbeidsindikator as ai
from arbeidsindikator.synth import generate_world


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "small"
    generate_world(out, scale="small", seed=1)
    return out


@pytest.fixture(scope="session")
def small_clean_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "small_clean"
    generate_world(out, scale="small", seed=3, clean=True)
    return out


@pytest.fixture(scope="session")
def medium_clean_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "medium_clean"
    generate_world(out, scale="medium", seed=11, clean=True)
    return out


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("worlds") / "medium"
    generate_world(out, scale="medium", seed=12)
    return out


@pytest.fixture(scope="session")
def small_run(small_world, tmp_path_factory):
    """The default model on the small world, person-level results kept (for checks only)."""
    db = tmp_path_factory.mktemp("runs") / "res.duckdb"
    run = ai.run_indicator(small_world, db=db, keep_person_level=True)
    return run, db
