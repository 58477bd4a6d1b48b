"""The organisation: regions, segments, teams, managers (with directors above them) and reps.

Static facts only (who, where, when hired); leavers are decided by the engine as it runs.
Gender and age band are drawn independently of everything else, so they carry no signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulator import names
from simulator import params as P
from simulator.timeline import Calendar


@dataclass
class Org:
    n: int
    rep_ids: np.ndarray  # str
    names: np.ndarray
    gender: np.ndarray
    age_band: np.ndarray
    seg: np.ndarray  # segment index
    region: np.ndarray  # region index
    team: np.ndarray  # team index
    manager: np.ndarray  # manager index (into managers)
    hire_day: np.ndarray  # day index, negative before the simulated timeline
    teams: pd.DataFrame  # team, region, segment, manager_idx
    managers: (
        pd.DataFrame
    )  # manager_id, name, level, parent_id, region, quality_base, poor_severity, logs_one_on_ones

    @property
    def manager_ids(self) -> np.ndarray:
        return self.managers["manager_id"].to_numpy()


def _names(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    pools = {"F": names.FIRST_F, "M": names.FIRST_M, "X": names.FIRST_X}
    first = np.empty(len(gender), dtype=object)
    for g, pool in pools.items():
        idx = np.flatnonzero(gender == g)
        first[idx] = np.asarray(pool, dtype=object)[rng.integers(0, len(pool), len(idx))]
    last = np.asarray(names.LAST, dtype=object)[rng.integers(0, len(names.LAST), len(gender))]
    return np.array([f"{a} {b}" for a, b in zip(first, last, strict=True)], dtype=object)


def build_org(n_reps: int, cal: Calendar, rng: np.random.Generator) -> Org:
    quarters = cal.n_periods + P.WARMUP_DAYS / 91
    n_initial = int(round(n_reps / (1 + P.QUARTERLY_HIRE_RATE * quarters)))
    n_initial = min(n_reps, max(n_initial, min(n_reps, 4)))
    n_hired = n_reps - n_initial

    # teams: one region and one segment each; every region gets a team when there are enough
    n_teams = max(1, int(np.ceil(n_initial / P.TEAM_SIZE)))
    team_region = rng.choice(len(P.REGIONS), size=n_teams, p=P.REGION_SHARE)
    team_region[: min(n_teams, len(P.REGIONS))] = np.arange(min(n_teams, len(P.REGIONS)))
    team_seg = rng.choice(len(P.SEGMENTS), size=n_teams, p=P.SEGMENT_SHARE)
    team_seg[: min(n_teams, len(P.SEGMENTS))] = np.arange(min(n_teams, len(P.SEGMENTS)))
    order = np.lexsort((team_seg, team_region))
    team_region, team_seg = team_region[order], team_seg[order]
    director_led = rng.random(n_teams) < P.DIRECTOR_LED_SHARE
    director_led[0] = False
    if n_teams >= 5 and not director_led.any():
        director_led[-1] = True  # every sizeable org has a director who leads a team directly

    # managers: one director per region with teams, then one first-line manager per other team
    regions_used = np.unique(team_region)
    n_dir = len(regions_used)
    n_fl = int((~director_led).sum())
    n_mgr = n_dir + n_fl
    width = max(3, len(str(n_mgr)))
    mgr_ids = np.array([f"M{i + 1:0{width}d}" for i in range(n_mgr)], dtype=object)
    dir_of_region = {r: i for i, r in enumerate(regions_used)}
    team_mgr = np.empty(n_teams, dtype=int)
    mgr_region = np.empty(n_mgr, dtype=int)
    mgr_region[:n_dir] = regions_used
    parent = np.full(n_mgr, None, dtype=object)
    level = np.array([2] * n_dir + [1] * n_fl)
    k = n_dir
    for t in range(n_teams):
        if director_led[t]:
            team_mgr[t] = dir_of_region[team_region[t]]
        else:
            team_mgr[t] = k
            mgr_region[k] = team_region[t]
            parent[k] = mgr_ids[dir_of_region[team_region[t]]]
            k += 1
    quality = rng.normal(0, P.MANAGER_BASE_SD, n_mgr)
    poor = rng.random(n_mgr) < P.POOR_MANAGER_SHARE
    if n_fl >= 6 and not poor[n_dir:].any():
        # a sizeable org has at least one poor first-line manager
        poor[n_dir + int(rng.integers(n_fl))] = True
    severity = np.where(poor, rng.uniform(*P.POOR_MANAGER_SEVERITY, n_mgr), 0.0)
    logs = rng.random(n_mgr) < 0.85
    mgr_gender = rng.choice(len(P.GENDERS), size=n_mgr, p=P.GENDER_SHARE)
    mgr_names = _names(rng, np.asarray(P.GENDERS)[mgr_gender])

    counter: dict[tuple[int, int], int] = {}
    team_names = []
    for r, s in zip(team_region, team_seg, strict=True):
        counter[(r, s)] = counter.get((r, s), 0) + 1
        team_names.append(f"{P.REGIONS[r]} {P.SEGMENTS[s]} {counter[(r, s)]}")
    teams = pd.DataFrame(
        {"team": team_names, "region": team_region, "segment": team_seg, "manager_idx": team_mgr}
    )
    managers = pd.DataFrame(
        {
            "manager_id": mgr_ids,
            "name": mgr_names,
            "level": level,
            "parent_id": parent,
            "region": np.asarray(P.REGIONS, dtype=object)[mgr_region],
            "quality_base": quality,
            "poor_severity": severity,
            "logs_one_on_ones": logs,
        }
    )

    # reps: the initial staff fill the teams; later hires join random teams through the timeline
    init_team = rng.permutation(np.arange(n_initial) % n_teams)
    hire_team = rng.integers(0, n_teams, n_hired)
    tenure = 10 + rng.exponential(900.0, n_initial)
    init_hire = -np.minimum(tenure, 15 * 365).astype(int)
    later_hire = np.sort(rng.integers(0, max(1, cal.n_days - 45), n_hired))
    hire_day = np.concatenate([np.sort(init_hire), later_hire])
    team = np.concatenate([init_team, hire_team])
    gender = np.asarray(P.GENDERS, dtype=object)[rng.choice(len(P.GENDERS), size=n_reps, p=P.GENDER_SHARE)]
    age = np.asarray(P.AGE_BANDS, dtype=object)[rng.choice(len(P.AGE_BANDS), size=n_reps, p=P.AGE_SHARE)]
    rep_names = _names(rng, gender)
    w = max(4, len(str(n_reps)))
    rep_ids = np.array([f"R{i + 1:0{w}d}" for i in range(n_reps)], dtype=object)
    return Org(
        n=n_reps,
        rep_ids=rep_ids,
        names=rep_names,
        gender=gender,
        age_band=age,
        seg=team_seg[team],
        region=team_region[team],
        team=team,
        manager=team_mgr[team],
        hire_day=hire_day,
        teams=teams,
        managers=managers,
    )
