"""What readers see: Norwegian numbers and labels, one-line CLI errors, reproducible exports,
and units that closed or merged."""

import hashlib
import json
import re

import duckdb
import pytest
from typer.testing import CliRunner

import arbeidsindikator as ai
from arbeidsindikator import norsk
from arbeidsindikator.cli import app

NBSP = "\u00a0"


# -- numbers and labels ----------------------------------------------------------------------

@pytest.mark.parametrize("x, decimals, text", [
    (2897539, 0, "2 897 539"), (30182.7, 2, "30 182,70"), (37.5, 1, "37,5"), (-0.04, 1, "0,0"),
    (-1.25, 2, "\u22121,25"), (float("nan"), 1, "–"), (None, 1, "–"), (0.5, 0, "0"),
])
def test_numbers_in_norwegian_format(x, decimals, text):
    assert norsk.number(x, decimals) == text


def test_signs_units_percent_and_months():
    assert norsk.number(0.885, 3, sign=True) == "+0,885"
    assert norsk.value(0.885, "jobb3", indicator=True) == "+0,9 prosentpoeng"
    assert norsk.value(42.0, "jobb3") == "42,0 prosent"  # a level of a job share is a per cent
    assert norsk.value(31.24, "atid3") == "31,2 timer per uke"
    assert norsk.percent(12.34) == "12,3 %"
    assert norsk.integer(1234567, html=True) == f"1{NBSP}234{NBSP}567"
    assert norsk.month("2023-06-01") == "juni 2023" and norsk.month("2024-01-01", short=True) == "jan. 2024"


def test_every_published_group_and_outcome_has_a_label(small_run):
    """No raw code on screen: each group and breakdown of the published table maps to a label
    that is not the code with an underscore or a Python literal."""
    _, db = small_run
    with duckdb.connect(str(db), read_only=True) as con:
        pairs = con.execute("SELECT DISTINCT NEDBRYTNING, GRUPPE, UTFALL FROM published").fetchall()
    for bd, grp, out in pairs:
        for label in (norsk.group(grp), norsk.breakdown(bd), norsk.outcome(out)):
            assert "_" not in label and label not in ("True", "False", "NaN", "None") and (label[0].isupper() or label[0].isdigit()), (bd, grp, out)
        assert norsk.outcome(out) != out


# -- the command line ------------------------------------------------------------------------

def _cli(*args):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("args, says", [
    (["indeks", "--unit", "Atlantis", "--outcome", "atid3", "--reference", "2023-06"], "Atlantis"),
    (["indeks", "--unit", "Norge", "--outcome", "atid99", "--reference", "2023-06"], "atid99"),
    (["indeks", "--unit", "Norge", "--outcome", "atid3", "--reference", "2023-13"], "2023-13"),
    (["sammenlign", "--breakdown", "Hårfarge", "--month", "2023-06"], "Hårfarge"),
    (["sammenlign", "--breakdown", "Ungdomsgaranti", "--month", "2030-01"], "2030"),
    (["arbeidsvolum", "--unit", "Norge", "--month", "2023-12", "--outcome", "jobb3"], "arbeidstid"),
    (["funnel", "--level", "3", "--outcome", "jobb3", "--period", "1999"], "1999"),
    (["report", "--unit", "Atlantis", "--out", "x"], "Atlantis"),
    (["export", "--tabell", "alt"], "alt"),
])
def test_wrong_arguments_give_one_norwegian_line(small_run, tmp_path, args, says):
    _, db = small_run
    r = _cli(*args, "--db", str(db))
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) <= 2, r.output  # the problem, and at most one line of what is valid
    assert says.lower() in r.output.lower()


ENGLISH = ("Error", "Usage", "Missing", "Try ", "Option", "No such", "Input should", "Show this", "required",
           "Got unexpected", "does not exist", "Invalid value")


@pytest.mark.parametrize("args, says", [
    (["run"], "--data"),
    (["run", "--data"], "--data"),
    (["run", "--dat", "x"], "--dat"),
    (["indeks", "--db", "x", "--unit", "Norge"], "--reference"),
    (["funnel", "--db", "x", "--level", "abc"], "heltall"),
    (["nope"], "nope"),
    (["run", "--data", "x", "extra"], "extra"),
    (["demo", "--scale", "huge"], "small, medium, national"),
])
def test_the_frameworks_argument_errors_are_one_norwegian_line(args, says):
    """Errors the command-line framework finds itself (a missing option, a wrong type, an
    unknown command): one line in Norwegian with where to find help, exit 2 (present/clitext.py)."""
    r = _cli(*args)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.strip().splitlines() if x.strip()]
    assert len(lines) == 1, r.output
    assert says in r.output and not any(w in r.output for w in ENGLISH), r.output


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["analyse", "--help"], ["demo", "--help"]])
def test_help_is_in_norwegian(args):
    r = _cli(*args)
    assert r.exit_code == 0 and "Bruk:" in r.output and "Valg" in r.output
    assert not any(w in r.output for w in ("Usage", "Options", "Show this message", "[required]", "COMMAND")), r.output
    if args[0] == "demo":
        assert "national" in r.output


def test_missing_stores_spark_and_interruptions_are_said_in_norwegian(small_world, tmp_path, monkeypatch):
    for args in (["analyse", "ressurser", "--db", str(tmp_path / "no.duckdb"), "--data", str(small_world)],
                 ["validity", "--db", str(tmp_path / "no.duckdb"), "--data", str(small_world)]):
        r = _cli(*args)
        said = " ".join(r.output.split())  # the console wraps long lines
        assert r.exit_code == 2 and "finnes ikke" in said and "Uventet" not in said, r.output
    import arbeidsindikator.api as api_mod

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(api_mod, "run_indicator", interrupted)
    r = _cli("run", "--data", str(small_world), "--db", str(tmp_path / "r.duckdb"))
    said = " ".join(r.output.split())
    assert r.exit_code == 130 and "Avbrutt" in said and "ikke lagret" in said, r.output


def test_analysis_and_input_errors_are_norwegian_and_keep_their_table_names(small_world, tmp_path):
    """A message naming a TOML table ("[spells]") prints it (the console's markup would eat it),
    and the input and analysis checks speak Norwegian."""
    (tmp_path / "forlop.toml").write_text("[spells]\nage_minn = 30\n")
    (tmp_path / "bad_group.toml").write_text('[spells]\nstart_group = "standart"\n')
    (tmp_path / "tom").mkdir()
    (tmp_path / "c1.toml").write_text("[spells]\nage_min = true\n")
    (tmp_path / "c2.toml").write_text("cohorts = 5\n")
    (tmp_path / "c3.toml").write_text("[cohorts]\nhorizons = [0, -3, 1000]\n")
    cases = [
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config",
          str(tmp_path / "forlop.toml")], "[spells]: age_minn"),
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config",
          str(tmp_path / "bad_group.toml")], "start_group må være en av"),
        (["analyse", "tidsbruk", "--data", str(tmp_path / "tom"), "--out", str(tmp_path / "t")], "har ingen time_use-tabell"),
        (["synth", "--out", str(tmp_path / "w"), "--employment-observed-to", "2030-01"], "må være mellom 2024-12 og 2025-12"),
        (["analyse", "tidsbruk", "--data", str(small_world), "--out", str(tmp_path / "t"), "--innsatsteam", "nan"],
         "--innsatsteam må være et antall årsverk"),
        (["analyse", "tidsbruk", "--data", str(small_world), "--out", str(tmp_path / "t"), "--innsatsteam", "inf"],
         "--innsatsteam må være et antall årsverk"),
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config", str(tmp_path / "c1.toml")],
         "age_min må være et heltall, ikke True"),
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config", str(tmp_path / "c2.toml")],
         "[cohorts] må være en tabell"),
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config", str(tmp_path / "c3.toml")],
         "horizons må være en liste med måneder fra 1 til 36"),
        (["analyse", "forlop", "--data", str(small_world), "--out", str(tmp_path / "f"), "--config", str(tmp_path)],
         "er en mappe"),
        (["run", "--data", str(small_world), "--db", str(tmp_path / "r.duckdb"), "--config", str(tmp_path / "nei.toml")],
         "finnes ikke"),
    ]
    for args, says in cases:
        r = _cli(*args)
        said = " ".join(r.output.split())
        assert r.exit_code == 2 and says in said and "Traceback" not in said, (args, r.output)
        assert not any(w in said for w in ("must be", "has no", "does not exist", "  ")), r.output


def test_validity_says_why_a_realistic_world_cannot_cover(tmp_path):
    from arbeidsindikator.cli import _validity_reading
    (tmp_path / "truth").mkdir()
    for clean, says in ((False, "--clean"), (True, "om lag 95 %")):
        (tmp_path / "truth" / "world.json").write_text(json.dumps({"clean": clean}))
        assert says in _validity_reading(tmp_path)
    assert "skjulte egenskaper" in _validity_reading(tmp_path.parent / "nowhere")


def test_a_missing_store_is_one_line(tmp_path):
    r = _cli("enheter", "--db", str(tmp_path / "nowhere.duckdb"))
    assert r.exit_code == 2 and "finnes ikke" in r.output and "Traceback" not in r.output


def test_help_describes_every_option():
    """Every option of every command has a help text; flags are shown without a type."""
    for cmd in app.registered_commands:
        name = cmd.name or cmd.callback.__name__
        r = _cli(name, "--help")
        assert r.exit_code == 0, name
        assert "<bool>" not in r.output and "BOOLEAN" not in r.output, name
        for line in r.output.splitlines():
            m = re.match(r"\s+(--[a-z-]+)\s+(\S+\s+)?(.*)$", line)
            if m and m.group(1) != "--help":
                assert m.group(3).strip(), f"{name} {m.group(1)} has no description"


def test_work_volume_only_for_hours(small_run):
    _, db = small_run
    res = ai.Results(db)
    with pytest.raises(ValueError, match="arbeidstid"):
        res.work_volume("Norge", "2023-12-01", outcome="jobb3")
    v = res.work_volume("Norge", "2023-12-01", outcome="atid3")
    res.close()
    assert v["persons"] > 0


# -- reproducible exports --------------------------------------------------------------------

def _digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths if not p.name.endswith(".json")}


def test_two_runs_of_the_same_world_export_identical_files(small_world, tmp_path):
    digests = []
    for i in (1, 2):
        db = tmp_path / f"r{i}.duckdb"
        ai.run_indicator(small_world, db=db)
        r = _cli("export", "--db", str(db), "--out", str(tmp_path / f"e{i}" / "publisert"))
        assert r.exit_code == 0, r.output
        files = sorted((tmp_path / f"e{i}").iterdir())
        assert {f.name for f in files} >= {"publisert.csv", "publisert.parquet", "publisert_perioder.csv",
                                          "publisert_perioder.parquet", "publisert.manifest.json"}
        digests.append(_digest(files))
    assert digests[0] == digests[1]
    text = (tmp_path / "e1" / "publisert.csv").read_text()
    assert not re.search(r"\d\.\d{7,}", text)  # published precision, not float noise


# -- units that closed -----------------------------------------------------------------------

def test_a_closed_office_is_named_with_its_successor(small_run, tmp_path):
    _, db = small_run
    res = ai.Results(db)
    units = res.units()
    closed = units[units["ETTERFOLGER"].notna()]
    assert len(closed)
    row = closed.iloc[0]
    res.close()
    r = _cli("report", "--db", str(db), "--unit", row["ORG_STED"], "--out", str(tmp_path / "rap"))
    assert r.exit_code == 0, r.output
    html = next((tmp_path / "rap").glob("*.html")).read_text()
    assert "lagt ned" in html
    assert str(row["ETTERFOLGER"]) in html
    # its work volume after the closing month says where its users went
    r = _cli("arbeidsvolum", "--db", str(db), "--unit", row["ORG_STED"], "--month", "2024-06")
    said = " ".join(r.output.split())
    assert r.exit_code == 2 and "lagt ned" in said and str(row["ETTERFOLGER"]) in said, r.output


def test_coefficients_in_norwegian_format():
    assert norsk.significant(0.001234) == "0,001234" and norsk.significant(-12.5) == "\u221212,5"
    assert norsk.significant(1234567.0) == "1 234 567"
