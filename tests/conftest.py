"""Shared fixtures: synthetic worlds are generated once per test session."""

from pathlib import Path

import pytest

import arbeidsindikator as ai
from arbeidsindikator.data.synth import generate_world


def _world(tmp_path_factory, name: str, scale: str, seed: int, clean: bool = False) -> Path:
    out = tmp_path_factory.mktemp("worlds") / name
    generate_world(out, scale=scale, seed=seed, clean=clean)
    return out


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "small", "small", 1)


@pytest.fixture(scope="session")
def small_clean_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "small_clean", "small", 3, clean=True)


@pytest.fixture(scope="session")
def medium_clean_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "medium_clean", "medium", 11, clean=True)


@pytest.fixture(scope="session")
def medium_world(tmp_path_factory) -> Path:
    return _world(tmp_path_factory, "medium", "medium", 12)


@pytest.fixture(scope="session")
def policy_world_dir(tmp_path_factory) -> Path:
    """A small world with employment observed to 2025-12: outcomes after the programme cuts of
    July 2024, and follow-up spells of the 2023 cohort observed a year on."""
    out = tmp_path_factory.mktemp("worlds") / "policy"
    generate_world(out, scale="small", seed=5, employment_observed_to="2025-12")
    return out


@pytest.fixture(scope="session")
def small_run(small_world, tmp_path_factory):
    """The default model on the small world, person-level results kept (for checks only)."""
    db = tmp_path_factory.mktemp("runs") / "res.duckdb"
    run = ai.run_indicator(small_world, db=db, keep_person_level=True)
    return run, db


@pytest.fixture(scope="session")
def medium_clean_run(medium_clean_world, tmp_path_factory):
    """The default model on the clean medium world, person-level kept (validity, coverage,
    office resources against the truth)."""
    db = tmp_path_factory.mktemp("runs") / "medium_clean.duckdb"
    ai.run_indicator(medium_clean_world, db=db, keep_person_level=True)
    return db
