"""Small-cell protection: primary and secondary suppression.

Primary: a cell with fewer than `min_persons` persons is published without values (for
cells spanning several months: fewer than `min_persons` different persons).

Secondary: a suppressed value must not be recoverable by subtraction. Published cells form
families whose children add up to a parent:
- the groups of a breakdown add up to the unit's 'Alle' cell;
- the offices of a region add up to the region, and the regions (with NOE) to the country,
  for the same breakdown group.
If a family with a published parent has exactly one suppressed child, that child's persons
and sums follow from the parent minus the others. The family's smallest other child is then
suppressed too. If there is no other child (the child is the whole parent), the parent is
suppressed instead. This repeats until no family has a single suppressed child, because new
suppressions can open other families.

Counts (ANTALL_PERSONER) stay visible. The count of users under follow-up is not the
sensitive part; their employment outcomes are. Every value derived from outcomes is removed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIMARY = "færre personer enn terskelen"
SECONDARY = "sekundærprikket (kunne ellers regnes ut fra andre celler)"
SUPPRESSED_VALUES = ["faktisk", "forventet", "INDIKATOR", "faktisk_SE", "forventet_SE", "INDIKATOR_SE",
                     "faktisk_KI_NEDRE", "faktisk_KI_OVRE", "forventet_KI_NEDRE", "forventet_KI_OVRE",
                     "INDIKATOR_KI_NEDRE", "INDIKATOR_KI_OVRE", "KOV_INDIKATOR_FAKTISK", "model_var", "model_var_indicator",
                     "var_y", "var_e"]


def _time_key(d: pd.DataFrame) -> str:
    return "BEHOLDNINGSMAANED" if "BEHOLDNINGSMAANED" in d.columns else "PERIODE"


def suppress(d: pd.DataFrame, min_persons: int, count: str = "ANTALL_PERSONER") -> pd.DataFrame:
    """`count`: the column the threshold applies to (unique persons for multi-month cells, so
    one person's many months never make a cell publishable)."""
    # a fixed row order and a full tie-break make the pattern reproducible: the cells arrive
    # from a parallel GROUP BY in no particular order, and equal counts are common
    t = _time_key(d)
    d = d.sort_values([t, "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"], kind="stable").reset_index(drop=True)
    supp = (d[count] < min_persons).to_numpy().copy()
    reason = np.where(supp, PRIMARY, None).astype(object)
    d["__unit"] = d["ORG_NIVAA"].astype(str) + ":" + d["ORG_STED_ID"].astype(str)
    d["__parent_unit"] = np.where(d["ORG_NIVAA"] == 3, "2:" + d.get("REGION_ID", pd.Series([""] * len(d))).astype(str),
                                  np.where(d["ORG_NIVAA"] == 2, "1:0000", ""))
    # each kind of family: (family of a row as child, key of its parent, rows that are parents,
    # key of a row as parent)
    base = d[t].astype(str) + "|" + d["UTFALL"]
    is_group = d["NEDBRYTNING"] != "Alle"
    unit_key = base + "|" + d["__unit"]
    grp = base + "|" + d["NEDBRYTNING"] + "|" + d["GRUPPE"]
    org_child = np.where(d["ORG_NIVAA"] >= 2, grp + "|" + d["__parent_unit"], None)
    kinds = [
        # the groups of one breakdown in a unit; parent: the unit's 'Alle' cell
        (np.where(is_group, unit_key + "|" + d["NEDBRYTNING"], None), np.where(is_group, unit_key, None), ~is_group, unit_key),
        # offices in a region / regions in the country, same group; parent: the upper unit's cell
        (org_child, org_child, d["ORG_NIVAA"] <= 2, grp + "|" + d["__unit"]),
    ]
    n = d["ANTALL_PERSONER"].to_numpy().copy()
    for _ in range(50):
        changed = False
        for child_fam, child_parent_key, is_parent, parent_key in kinds:
            parent_supp = pd.Series(supp[is_parent.to_numpy()], index=parent_key[is_parent].to_numpy())
            parent_supp = parent_supp[~parent_supp.index.duplicated()]
            ch = pd.DataFrame({"fam": child_fam, "pkey": child_parent_key, "supp": supp, "n": n,
                               "row": np.arange(len(d))}).dropna(subset=["fam"])
            counts = ch.groupby("fam")["supp"].sum()
            lonely = counts[counts == 1].index
            if not len(lonely):
                continue
            cand = ch[ch["fam"].isin(lonely)]
            published_parent = ~cand["pkey"].map(parent_supp).fillna(True).astype(bool)
            cand = cand[published_parent]
            free = cand[~cand["supp"]]
            pick = free.sort_values(["fam", "n", "row"], kind="stable").groupby("fam").head(1)["row"].to_numpy()
            # a family whose only child is suppressed (the child equals the parent): suppress the parent
            no_free = set(cand["fam"]) - set(free["fam"])
            if no_free:
                keys = set(cand.loc[cand["fam"].isin(no_free), "pkey"])
                parent_rows = np.flatnonzero(is_parent.to_numpy() & np.isin(parent_key.to_numpy(), list(keys)) & ~supp)
                pick = np.concatenate([pick, parent_rows])
            if not len(pick):
                continue
            supp[pick] = True
            reason[pick] = SECONDARY
            changed = True
        if not changed:
            break
    d = d.drop(columns=["__unit", "__parent_unit"])
    d["PRIKKET"] = supp
    d["PRIKKET_ARSAK"] = reason
    for c in SUPPRESSED_VALUES:
        if c in d.columns:
            d.loc[supp, c] = np.nan
    return d
