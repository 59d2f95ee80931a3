"""The input data contract: the tables a Nav register extract provides.

Each table is declared once here (columns, types, keys, allowed values, ranges and the
references between tables). `validate.py` checks a data directory against these
declarations, and `docs/data-contract.md` is generated from them, so code, checks and
documentation cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Allowed values. Codes are Norwegian (the domain's own words), ASCII-only so that they
# survive every CSV tool on the way.
SEX = ("kvinne", "mann")
EDUCATION = ("grunnskole", "videregaende", "hoyere_kort", "hoyere_lang", "ukjent")
IMMIGRANT_CATEGORY = ("norskfodt", "vestlig", "ikke_vestlig", "ukjent")
INNSATSGRUPPE = (
    "standard",
    "situasjonsbestemt",
    "spesielt_tilpasset",
    "varig_tilpasset",
    "ikke_vurdert",
    "sykmeldt_uten_arbeidsgiver",
)
BENEFIT = ("ingen", "dagpenger", "aap", "annen")
OFFICE_TYPE = ("lokalkontor", "nasjonal")
PROGRAMME = ("arbeidsforberedende", "opplaering", "lonnstilskudd", "oppfolging")

# Weekly hours to monthly hours: a month is 52/12 weeks on average.
WEEKS_PER_MONTH = 52.0 / 12.0


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of: int, float, str, date, bool
    description: str
    nullable: bool = False
    allowed: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    month: bool = False  # a date that must be the first day of a month
    severity: str = "error"  # "warning": reported, does not stop the indicator pipeline


@dataclass(frozen=True)
class Reference:
    """Rows of this table must find a row in another table (optionally valid at `month`)."""

    columns: tuple[str, ...]
    table: str
    target_columns: tuple[str, ...]
    valid_at: str | None = None  # column in this table holding the month of validity
    description: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    references: tuple[Reference, ...] = field(default_factory=tuple)
    empty_severity: str = "error"  # an empty table: refused, or (for what only an analysis needs) a warning
    empty_note: str = ""
    required: bool = True  # False: only an analysis needs it; an extract without it is complete

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _month(name: str, description: str, nullable: bool = False) -> Column:
    return Column(name, "date", description, nullable=nullable, month=True)


PERSONS = Table(
    "persons",
    "One row per person in the extract (fixed characteristics).",
    (
        Column("person_id", "int", "Pseudonymised person id."),
        _month("birth_month", "Month of birth (first day of the month)."),
        Column("sex", "str", "Sex.", allowed=SEX),
        Column("education", "str", "Highest completed education, 5 levels incl. unknown.", allowed=EDUCATION),
        Column("immigrant_category", "str", "Country background: born in Norway, EU/EEA and other Western, non-Western, unknown.", allowed=IMMIGRANT_CATEGORY),
    ),
    key=("person_id",),
)

STOCK = Table(
    "stock",
    "The follow-up stock (beholdning): one row per person and month under §14a work-oriented follow-up.",
    (
        _month("month", "Measurement month (beholdningsmåned)."),
        Column("person_id", "int", "Person id (persons.person_id)."),
        Column("office_id", "str", "Following-up unit: a local office or the national follow-up unit NOE."),
        Column("municipality_id", "str", "Municipality of residence in the month."),
        Column("innsatsgruppe", "str", "Need level from the §14a decision (or not yet assessed).", allowed=INNSATSGRUPPE),
        Column("months_since_registration", "int", "Whole months since the current registration started (0 in the first month).", min=0, max=600),
        Column("benefit", "str", "Main benefit in the month.", allowed=BENEFIT),
        Column("laid_off", "bool", "Temporarily laid off (permittert)."),
        Column("youth_guarantee", "bool", "Covered by the youth guarantee (ungdomsgarantien, from July 2023)."),
        Column("work_hours_12m", "float", "Hours worked in the 12 months before registration.", min=0, max=12 * 320),
        Column("work_hours_24m", "float", "Hours worked in the 24 months before registration.", min=0, max=24 * 320),
        Column("reduced_work_capacity", "bool", "Registered reduced work capacity (nedsatt arbeidsevne, health)."),
    ),
    key=("person_id", "month"),
    references=(
        Reference(("person_id",), "persons", ("person_id",), description="every person in the stock is in persons"),
        Reference(("office_id",), "offices", ("office_id",), valid_at="month", description="the office exists in the month"),
        Reference(("municipality_id",), "municipalities", ("municipality_id",), valid_at="month", description="the municipality exists in the month"),
    ),
)

EMPLOYMENT = Table(
    "employment",
    "Hours worked per person and month, as reported to the employer register (a-ordningen). "
    "Months without a row mean zero hours, up to `extract.employment_observed_to`.",
    (
        Column("person_id", "int", "Person id (persons.person_id)."),
        _month("month", "Calendar month of the work."),
        Column("hours", "float", "Hours worked in the month (all employers).", min=0, max=744),
    ),
    key=("person_id", "month"),
    references=(Reference(("person_id",), "persons", ("person_id",), description="every employed person is in persons"),),
    empty_note="nobody would have worked: every outcome would be 0",
)

_REGION_MONTH = (Column("commuting_region_id", "str", "Commuting region."), _month("month", "Calendar month."))

LABOUR_MARKET = Table(
    "labour_market",
    "Local labour market per commuting region (bo- og arbeidsmarkedsregion) and month.",
    (
        *_REGION_MONTH,
        Column("inflow_rate", "float", "Inflow of newly unemployed as a share of the labour force.", min=0, max=1),
        Column("unemployment_rate", "float", "Registered unemployment as a share of the labour force.", min=0, max=1),
        Column("vacancy_rate", "float", "New vacancies as a share of the labour force.", min=0, max=1),
    ),
    key=("commuting_region_id", "month"),
)

LABOUR_MARKET_MEASURES = Table(
    "labour_market_measures",
    "Further labour-market measures per commuting region and month, as in Nav's candidate models (79: a "
    "shift-share index, 81: youth unemployment). Optional: a model specification may use them as terms.",
    (
        *_REGION_MONTH,
        Column("youth_unemployment_rate", "float", "Registered unemployment among 16-29-year-olds as a share of their "
               "labour force.", min=0, max=1),
        Column("shift_share_index", "float", "Employment growth over 12 months predicted from the region's industry mix "
               "and each industry's national growth, in per cent.", min=-100, max=100),
    ),
    key=("commuting_region_id", "month"),
    references=(Reference(("commuting_region_id", "month"), "labour_market", ("commuting_region_id", "month"),
                          description="the region and month are in the labour market table"),),
    empty_severity="warning",
    empty_note="the candidate models that use these measures need it",
    required=False,
)

MUNICIPALITIES = Table(
    "municipalities",
    "Municipality -> commuting region and municipality -> office, valid from/to (municipality mergers, office changes).",
    (
        Column("municipality_id", "str", "Municipality number."),
        Column("municipality_name", "str", "Name."),
        Column("commuting_region_id", "str", "Commuting region the municipality belongs to."),
        Column("office_id", "str", "Local office serving the municipality."),
        _month("valid_from", "First month the row is valid."),
        _month("valid_to", "Last month the row is valid (empty: still valid).", nullable=True),
    ),
    key=("municipality_id", "valid_from"),
    references=(
        Reference(("office_id",), "offices", ("office_id",), valid_at="valid_from", description="the serving office exists when the row starts"),
    ),
)

OFFICES = Table(
    "offices",
    "Office -> region, valid from/to; merged or split offices name their successor.",
    (
        Column("office_id", "str", "Office number (enhetsnummer)."),
        Column("office_name", "str", "Name."),
        Column("region_id", "str", "Nav region (fylkesenhet); the national unit NOE has region 'NOE'."),
        Column("office_type", "str", "Local office or national unit.", allowed=OFFICE_TYPE),
        _month("valid_from", "First month the office exists."),
        _month("valid_to", "Last month the office exists (empty: still exists).", nullable=True),
        Column("successor_office_id", "str", "Office that took over the users when this one closed (merger).", nullable=True),
    ),
    key=("office_id", "valid_from"),
    references=(Reference(("region_id",), "regions", ("region_id",), description="the region is known"),),
)

REGIONS = Table(
    "regions",
    "The 12 Nav regions, plus the national follow-up unit NOE as its own unit.",
    (
        Column("region_id", "str", "Region code."),
        Column("region_name", "str", "Name."),
    ),
    key=("region_id",),
)

OFFICE_HR = Table(
    "office_hr",
    "Office HR per office and month for state employees: agreed working hours and sick-leave hours. "
    "Value problems here are warnings: the office-resources analysis excludes and reports them.",
    (
        Column("office_id", "str", "Office."),
        _month("month", "Calendar month."),
        Column("agreed_hours", "float", "Agreed working hours of the office's state employees in the month.", min=0, max=1e6, severity="warning"),
        Column("sick_leave_hours", "float", "Hours of sick leave in the month.", min=0, max=1e6, severity="warning"),
    ),
    key=("office_id", "month"),
    references=(Reference(("office_id",), "offices", ("office_id",), valid_at="month", description="the office exists in the month"),),
    empty_severity="warning",
    empty_note="the office-resources analysis needs it; the indicator does not",
)

EXTRACT = Table(
    "extract",
    "One row describing the extract: up to which month employment is completely observed. "
    "Outcomes whose window runs past it are censored (missing), not zero.",
    (
        _month("employment_observed_to", "Last month of complete employment data."),
        Column("description", "str", "Free text: source, date of extraction.", nullable=True),
    ),
    key=(),
)

PROGRAMME_PARTICIPATION = Table(
    "programme_participation",
    "Labour-market programmes (arbeidsmarkedstiltak): one row per person and month in a programme. "
    "Optional: the policy evaluations and the follow-up spells use it; the indicator does not.",
    (
        Column("person_id", "int", "Person id (persons.person_id)."),
        _month("month", "Month in the programme."),
        Column("programme", "str", "Kind of programme.", allowed=PROGRAMME),
    ),
    key=("person_id", "month"),
    references=(
        Reference(("person_id", "month"), "stock", ("person_id", "month"),
                  description="a participant is under follow-up in the month"),
    ),
    empty_severity="warning",
    empty_note="nobody would have been in a programme",
    required=False,
)

PROGRAMME_PLACES = Table(
    "programme_places",
    "Programme places allocated to each region per month (the budget), and the participants. "
    "Optional: the evaluation of the programme cuts uses it.",
    (
        Column("region_id", "str", "Region (regions.region_id)."),
        _month("month", "Calendar month."),
        Column("places", "int", "Places allocated to the region in the month.", min=0, max=1e7),
        Column("participants", "int", "Persons from the region in a programme in the month.", min=0, max=1e7),
    ),
    key=("region_id", "month"),
    references=(Reference(("region_id",), "regions", ("region_id",), description="the region is known"),),
    empty_severity="warning",
    empty_note="the programme-cut evaluation needs it",
    required=False,
)

_HOURS = tuple(Column(f"hours_{g}", "float", f"Hours logged on work-oriented follow-up of users with {g.replace('_', ' ')} "
                      "(or the group named)." if g != "annet" else "Hours logged on other work areas.", min=0, max=200)
               for g in ("standard", "situasjonsbestemt", "spesielt_tilpasset", "varig_tilpasset", "ikke_fastsatt",
                         "ikke_knyttet", "annet"))

TIME_USE = Table(
    "time_use",
    "The time-use survey (ressurskartlegging): one row per answering employee of a sampled office, two weeks of "
    "logged hours by work area and innsatsgruppe. Offices are sampled within strata (office size; Nav Vestland and "
    "NOE taken whole). Optional: `analyse tidsbruk` uses it.",
    (
        Column("year", "int", "Survey year.", min=2000, max=2100),
        Column("office_id", "str", "Office (offices.office_id)."),
        Column("stratum", "str", "Sampling stratum of the office."),
        Column("stratum_offices", "int", "Offices in the stratum (the population of PSUs).", min=1, max=10000),
        Column("stratum_fte", "float", "FTEs of all offices in the stratum (HR): what the survey is weighted up to.", min=0, max=1e6),
        Column("office_fte", "float", "The office's FTEs (HR).", min=0, max=1e5),
        Column("employee_id", "str", "Employee (pseudonymised)."),
        Column("employee_fte", "float", "The employee's FTE.", min=0, max=2),
        *_HOURS,
    ),
    key=("year", "employee_id"),
    references=(Reference(("office_id",), "offices", ("office_id",), description="the office is known"),),
    empty_severity="warning", empty_note="the time-use tables need it", required=False,
)

_LIKERT = dict(min=1, max=6)
SURVEY_OFFICES = Table(
    "survey_offices",
    "The office-manager survey: one row per answering office. Optional: `analyse undersokelse` uses it.",
    (
        Column("office_id", "str", "Office."),
        Column("size_class", "str", "Size class by FTEs (AFI: small 1-15, medium 16-39, large 40+).",
               allowed=("liten", "mellomstor", "stor")),
        Column("size_class_offices", "int", "Offices in the size class (the population the answers stand for).", min=1, max=10000),
        Column("staffing", "float", "FTEs per 100 users.", min=0, max=1000),
        Column("plan", "bool", "The office has a written plan for the follow-up of standard users."),
        Column("cooperation", "int", "Cooperation with employers works well (1-6).", **_LIKERT),
        Column("capacity", "int", "The office has capacity for the follow-up it should give (1-6).", **_LIKERT),
    ),
    key=("office_id",), empty_severity="warning", empty_note="the office survey tables need it", required=False,
)

_GROUP_FLAGS = (
    Column("ung", "bool", "Aged under 25."), Column("ikke_vestlig", "bool", "Non-Western immigrant."),
    Column("lav_utdanning", "bool", "Compulsory schooling only."),
    Column("nedsatt_arbeidsevne", "bool", "Registered reduced work capacity."),
    Column("langtid", "bool", "Registered six months or more."),
)
_SEX_AGE = (Column("sex", "str", "Sex.", allowed=SEX),
            Column("age_group", "str", "Age group.", allowed=("16-24", "25-34", "35-49", "50+")))

SURVEY_USERS = Table(
    "survey_users",
    "The user survey: answering users of a cross-section of the stock, sampled within regions. Optional.",
    (
        Column("respondent_id", "int", "Respondent."),
        Column("region_id", "str", "Region (sampling stratum)."),
        Column("region_population", "int", "Users in the region (the stratum's population).", min=1, max=1e7),
        Column("region_sample", "int", "Users sampled in the region (answering or not).", min=1, max=1e7),
        *_SEX_AGE, *_GROUP_FLAGS,
        Column("satisfaction", "int", "Satisfied with the follow-up (1-6).", **_LIKERT),
        Column("helped", "int", "The follow-up helped me towards work (1-6).", **_LIKERT),
    ),
    key=("respondent_id",), empty_severity="warning", empty_note="the user survey tables need it", required=False,
)

SURVEY_FOLLOWUP = Table(
    "survey_followup",
    "The follow-up survey of former users: in work or not six months or so after leaving. Optional.",
    (Column("respondent_id", "int", "Respondent."), *_SEX_AGE, *_GROUP_FLAGS,
     Column("in_work", "bool", "In work at the interview.")),
    key=("respondent_id",), empty_severity="warning", empty_note="the follow-up survey tables need it", required=False,
)

SURVEY_POPULATION = Table(
    "survey_population",
    "Known population counts a survey is post-stratified to (sex x age group). Optional.",
    (Column("survey", "str", "Survey.", allowed=("bruker", "oppfolging")), *_SEX_AGE,
     Column("persons", "int", "Persons in the population cell.", min=0, max=1e8)),
    key=("survey", "sex", "age_group"), empty_severity="warning", required=False,
)

SURVEY_FIELDWORK = Table(
    "survey_fieldwork",
    "Fieldwork counts per survey, for the response rate (AAPOR: respondents / (respondents + refusals and "
    "other non-response + e x cases of unknown eligibility)). Optional.",
    (Column("survey", "str", "Survey.", allowed=("bruker", "oppfolging", "kontor")),
     Column("respondents", "int", "Complete answers.", min=0, max=1e8),
     Column("refused_or_other", "int", "Eligible, not answering.", min=0, max=1e8),
     Column("not_contacted", "int", "Not reached: eligibility unknown.", min=0, max=1e8),
     Column("eligible_share", "float", "Estimated share eligible among those not reached (e).", min=0, max=1)),
    key=("survey",), empty_severity="warning", required=False,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (PERSONS, STOCK, EMPLOYMENT, LABOUR_MARKET, LABOUR_MARKET_MEASURES, MUNICIPALITIES, OFFICES, REGIONS, OFFICE_HR, EXTRACT,
              PROGRAMME_PARTICIPATION, PROGRAMME_PLACES, TIME_USE, SURVEY_OFFICES, SURVEY_USERS, SURVEY_FOLLOWUP,
              SURVEY_POPULATION, SURVEY_FIELDWORK)
}


def contract_markdown() -> str:
    """The contract as Markdown (written to docs/data-contract.md)."""
    lines = [
        "# Input data contract",
        "",
        "Generated from `arbeidsindikator/data/contract.py` by `arbeidsindikator contract`; do not edit by hand.",
        "A data directory holds one file per table, `<table>.parquet` (or `<table>.csv`).",
        "`arbeidsindikator validate --data DIR` checks all of it and reports every violation at once.",
        "",
    ]
    for t in TABLES.values():
        lines += [f"## `{t.name}`", "", t.description, ""]
        lines.append(f"Key: {', '.join(t.key) if t.key else '(single row)'}"
                     + ("" if t.required else ". Optional: an extract without this table is complete."))
        lines.append("")
        lines += ["| column | type | null | rule | description |", "|---|---|---|---|---|"]
        for c in t.columns:
            rule = []
            if c.allowed:
                rule.append("one of " + ", ".join(f"`{a}`" for a in c.allowed))
            if c.min is not None or c.max is not None:
                rule.append(f"in [{c.min:g}, {c.max:g}]")
            if c.month:
                rule.append("first day of a month")
            if c.severity == "warning":
                rule.append("(warning only)")
            lines.append(f"| `{c.name}` | {c.type} | {'yes' if c.nullable else 'no'} | {'; '.join(rule)} | {c.description} |")
        for r in t.references:
            when = f" valid at `{r.valid_at}`" if r.valid_at else ""
            lines.append("")
            lines.append(f"- `{', '.join(r.columns)}` must exist in `{r.table}.{', '.join(r.target_columns)}`{when}: {r.description}.")
        lines.append("")
    return "\n".join(lines)
