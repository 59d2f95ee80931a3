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


def _codes(k: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """One integer per distinct combination of `cols`."""
    return k.groupby(cols, sort=False, dropna=False).ngroup().to_numpy()


def suppress(d: pd.DataFrame, min_persons: int, count: str = "ANTALL_PERSONER") -> pd.DataFrame:
    """`count`: the column the threshold applies to (unique persons for multi-month cells, so
    one person's many months never make a cell publishable)."""
    # a fixed row order and a full tie-break make the pattern reproducible: the cells arrive
    # from a parallel GROUP BY in no particular order, and equal counts are common
    t = _time_key(d)
    d = d.sort_values([t, "ORG_NIVAA", "ORG_STED_ID", "UTFALL", "NEDBRYTNING", "GRUPPE"], kind="stable").reset_index(drop=True)
    supp = (d[count] < min_persons).to_numpy().copy()
    reason = np.where(supp, PRIMARY, None).astype(object)
    # families and parents as integer keys (string keys cost most of the time at scale)
    level = d["ORG_NIVAA"].to_numpy()
    parent_level = np.where(level == 3, 2, np.where(level == 2, 1, 0))
    parent_id = np.where(level == 3, d["REGION_ID"].astype(object).to_numpy() if "REGION_ID" in d else "",
                         np.where(level == 2, "0000", ""))
    is_group = (d["NEDBRYTNING"] != "Alle").to_numpy()
    k = pd.DataFrame({"t": d[t].astype(str).to_numpy(), "o": d["UTFALL"].to_numpy(), "lv": level,
                      "id": d["ORG_STED_ID"].astype(str).to_numpy(), "b": d["NEDBRYTNING"].to_numpy(),
                      "g": d["GRUPPE"].to_numpy(), "plv": parent_level, "pid": parent_id.astype(str)})
    unit_key = _codes(k, ["t", "o", "lv", "id"])
    # a row as the parent of other units' rows, and a row as their child, in one key space
    as_parent = k[["t", "o", "b", "g", "lv", "id"]]
    as_child = k[["t", "o", "b", "g", "plv", "pid"]].set_axis(as_parent.columns, axis=1)
    org_keys = _codes(pd.concat([as_parent, as_child], ignore_index=True), list(as_parent.columns))
    org_parent, org_child = org_keys[:len(d)], np.where(level >= 2, org_keys[len(d):], -1)
    group_fam = np.where(is_group, _codes(k, ["t", "o", "lv", "id", "b"]), -1)
    # each kind of family: (family of a row as child, key of its parent, rows that are parents,
    # key of a row as parent); -1: not a child of this kind
    kinds = [
        # the groups of one breakdown in a unit; parent: the unit's 'Alle' cell
        (group_fam, np.where(is_group, unit_key, -1), ~is_group, unit_key),
        # offices in a region / regions in the country, same group; parent: the upper unit's cell
        (org_child, org_child, level <= 2, org_parent),
    ]
    n = d["ANTALL_PERSONER"].to_numpy().copy()
    for _ in range(50):
        changed = False
        for child_fam, child_parent_key, is_parent, parent_key in kinds:
            parent_supp = pd.Series(supp[is_parent], index=parent_key[is_parent])
            parent_supp = parent_supp[~parent_supp.index.duplicated()]
            member = child_fam >= 0
            ch = pd.DataFrame({"fam": child_fam[member], "pkey": child_parent_key[member], "supp": supp[member],
                               "n": n[member], "row": np.flatnonzero(member)})
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
                parent_rows = np.flatnonzero(is_parent & np.isin(parent_key, list(keys)) & ~supp)
                pick = np.concatenate([pick, parent_rows])
            if not len(pick):
                continue
            supp[pick] = True
            reason[pick] = SECONDARY
            changed = True
        if not changed:
            break
    d["PRIKKET"] = supp
    d["PRIKKET_ARSAK"] = reason
    for c in SUPPRESSED_VALUES:
        if c in d.columns:
            d.loc[supp, c] = np.nan
    return d
