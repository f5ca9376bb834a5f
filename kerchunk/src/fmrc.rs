//! Forecast-model-run-collection (FMRC) views over OFS single-file
//! references: which members make up one model run, and which make up the
//! "best" time series. Pure functions; the caller parses object keys (see
//! `ingest::ofs_key`) into [`FmrcMember`]s and combines the selected
//! members' reference sets with [`crate::combine`] in the returned order.
//!
//! Valid times follow the OFS rules: `fHHH` is valid at cycle + HHH h,
//! `nHHH` at cycle − 6 h + HHH h (WCOFS: − 24 h), so `n006` and `f000` of one
//! cycle are both valid at the cycle time. The caller computes `valid`.

use std::collections::BTreeMap;

/// Nowcast (`nHHH`) or forecast (`fHHH`) output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HourKind {
    Nowcast,
    Forecast,
}

/// One single-file reference set of an OFS run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FmrcMember {
    /// Key of the single-file reference set (used to identify members and
    /// as the last tie-break).
    pub key: String,
    /// Cycle (model run start), unix seconds.
    pub cycle: i64,
    pub hour_kind: HourKind,
    /// `HHH` of `nHHH`/`fHHH`.
    pub hour: u16,
    /// Valid time, unix seconds.
    pub valid: i64,
}

/// Which hours of a cycle a model-run view holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunKinds {
    /// `fHHH` only (the original pipeline's model run,
    /// `nos.{ofs}.fields.{YYYYMMDD}.t{CC}z.nc.zarr`, and `ingest_tools`'
    /// `...fields.forecast...`).
    #[default]
    Forecast,
    /// `nHHH` only (`ingest_tools`' `...fields.nowcast...`).
    Nowcast,
    /// Nowcast then forecast: the whole run from hot start to the end of
    /// the forecast. Where `n006` and `f000` share the cycle time the
    /// nowcast is kept.
    Both,
}

/// How the best time series picks a member per valid time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BestRule {
    /// For each valid time: the member from the **newest cycle** that has
    /// one; within that cycle a nowcast beats a forecast (`n006` vs `f000`,
    /// both valid at the cycle time). Nowcasts are included.
    ///
    /// The result is: every cycle's nowcast for the hours before the next
    /// cycle's nowcast starts (nowcasts assimilate observations, so they are
    /// the best estimate of the past), then the newest cycle's nowcast and
    /// its forecast hours. A cycle still being written wins for the hours it
    /// already has; older forecasts fill the rest.
    #[default]
    NewestCycle,
    /// The original pipeline: forecasts only, smallest forecast hour per
    /// valid time. Since valid = cycle + hour, the smallest hour is the
    /// newest cycle, so this equals `NewestCycle` without nowcasts: the past
    /// is made of `f001..f006` forecasts instead of nowcasts, and it has a
    /// gap where only nowcasts exist (before the first cycle's `f001`).
    Original,
}

/// Distinct cycles, ascending.
pub fn cycles(members: &[FmrcMember]) -> Vec<i64> {
    let mut c: Vec<i64> = members.iter().map(|m| m.cycle).collect();
    c.sort_unstable();
    c.dedup();
    c
}

/// Preference within one valid time: larger is better.
/// Newer cycle, then nowcast over forecast, then the smaller key (the same
/// file listed under two names, e.g. legacy and new style).
fn better(a: &FmrcMember, b: &FmrcMember) -> bool {
    let rank = |m: &FmrcMember| (m.cycle, m.hour_kind == HourKind::Nowcast);
    match rank(a).cmp(&rank(b)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.key < b.key,
    }
}

/// One member per valid time (the [`better`] one), ascending valid time.
fn pick<'a>(candidates: impl Iterator<Item = &'a FmrcMember>) -> Vec<&'a FmrcMember> {
    let mut by_valid: BTreeMap<i64, &'a FmrcMember> = BTreeMap::new();
    for m in candidates {
        by_valid
            .entry(m.valid)
            .and_modify(|cur| {
                if better(m, cur) {
                    *cur = m;
                }
            })
            .or_insert(m);
    }
    by_valid.into_values().collect()
}

/// Members of one model run (cycle), one per valid time, ascending valid
/// time: the input order for [`crate::combine::combine`].
pub fn model_run(members: &[FmrcMember], cycle: i64, kinds: RunKinds) -> Vec<&FmrcMember> {
    pick(members.iter().filter(|m| {
        m.cycle == cycle
            && match kinds {
                RunKinds::Forecast => m.hour_kind == HourKind::Forecast,
                RunKinds::Nowcast => m.hour_kind == HourKind::Nowcast,
                RunKinds::Both => true,
            }
    }))
}

/// The best time series, one member per valid time, ascending valid time.
pub fn best_time_series(members: &[FmrcMember], rule: BestRule) -> Vec<&FmrcMember> {
    match rule {
        BestRule::NewestCycle => pick(members.iter()),
        BestRule::Original => pick(members.iter().filter(|m| m.hour_kind == HourKind::Forecast)),
    }
}

/// True when the member with `key` is part of `view` (the original
/// pipeline rebuilt the best series only when the new file made it in).
pub fn contains(view: &[&FmrcMember], key: &str) -> bool {
    view.iter().any(|m| m.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600;
    const DAY0: i64 = 1_679_529_600; // 2023-03-23T00:00Z

    fn m(cycle_h: i64, kind: HourKind, hour: u16) -> FmrcMember {
        let cycle = DAY0 + cycle_h * H;
        let valid = match kind {
            HourKind::Forecast => cycle + i64::from(hour) * H,
            HourKind::Nowcast => cycle - 6 * H + i64::from(hour) * H,
        };
        let k = match kind {
            HourKind::Forecast => 'f',
            HourKind::Nowcast => 'n',
        };
        FmrcMember {
            key: format!("nos/nos.dbofs.fields.{k}{hour:03}.c{cycle_h:+03}.nc.zarr"),
            cycle,
            hour_kind: kind,
            hour,
            valid,
        }
    }

    /// Cycles at the given hours (relative to DAY0), with nowcast 1..=6 and
    /// forecast 1..=fmax each.
    fn runs(cycle_hours: &[i64], fmax: u16) -> Vec<FmrcMember> {
        let mut v = Vec::new();
        for &c in cycle_hours {
            for h in 1..=6 {
                v.push(m(c, HourKind::Nowcast, h));
            }
            for h in 1..=fmax {
                v.push(m(c, HourKind::Forecast, h));
            }
        }
        v
    }

    fn summary(v: &[&FmrcMember]) -> Vec<(i64, i64, char, u16)> {
        v.iter()
            .map(|x| {
                (
                    (x.valid - DAY0) / H,
                    (x.cycle - DAY0) / H,
                    if x.hour_kind == HourKind::Nowcast {
                        'n'
                    } else {
                        'f'
                    },
                    x.hour,
                )
            })
            .collect()
    }

    #[test]
    fn model_run_forecast_nowcast_both() {
        let mut all = runs(&[0, 6, 12], 48);
        // shuffle-ish: reverse
        all.reverse();
        let c = DAY0 + 6 * H;
        let f = model_run(&all, c, RunKinds::Forecast);
        assert_eq!(f.len(), 48);
        assert!(
            f.iter()
                .all(|x| x.cycle == c && x.hour_kind == HourKind::Forecast)
        );
        assert!(f.windows(2).all(|w| w[0].valid < w[1].valid));
        assert_eq!(f[0].hour, 1);
        assert_eq!(f[47].hour, 48);

        let n = model_run(&all, c, RunKinds::Nowcast);
        assert_eq!(summary(&n)[0], (1, 6, 'n', 1));
        assert_eq!(summary(&n)[5], (6, 6, 'n', 6));

        let b = model_run(&all, c, RunKinds::Both);
        assert_eq!(b.len(), 54);
        assert!(b.windows(2).all(|w| w[0].valid < w[1].valid));
        assert_eq!(summary(&b)[5], (6, 6, 'n', 6));
        assert_eq!(summary(&b)[6], (7, 6, 'f', 1));

        assert!(model_run(&all, DAY0 + 18 * H, RunKinds::Both).is_empty());
    }

    #[test]
    fn model_run_f000_and_n006_share_the_cycle_time() {
        let mut all = runs(&[0], 3);
        all.push(m(0, HourKind::Forecast, 0));
        let b = model_run(&all, DAY0, RunKinds::Both);
        // n006 kept, f000 dropped
        assert_eq!(b.len(), 9);
        assert_eq!(summary(&b)[5], (0, 0, 'n', 6));
        // forecast-only run keeps f000
        let f = model_run(&all, DAY0, RunKinds::Forecast);
        assert_eq!(summary(&f)[0], (0, 0, 'f', 0));
        assert_eq!(f.len(), 4);
    }

    #[test]
    fn duplicate_names_pick_smallest_key() {
        let a = m(0, HourKind::Forecast, 1);
        let mut b = a.clone();
        b.key = "nos/dbofs.t00z.20230323.fields.f001.nc.zarr".into();
        let all = vec![a.clone(), b.clone()];
        let r = model_run(&all, DAY0, RunKinds::Forecast);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].key, a.key.clone().min(b.key.clone()));
        let all2 = vec![b.clone(), a.clone()];
        assert_eq!(model_run(&all2, DAY0, RunKinds::Forecast)[0].key, r[0].key);
        assert_eq!(
            best_time_series(&all2, BestRule::NewestCycle)[0].key,
            r[0].key
        );
        assert_eq!(best_time_series(&all2, BestRule::Original)[0].key, r[0].key);
    }

    #[test]
    fn best_newest_cycle() {
        let all = runs(&[0, 6, 12], 48);
        let b = best_time_series(&all, BestRule::NewestCycle);
        let s = summary(&b);
        // valid -5 .. 60, one per hour
        assert_eq!(s.len(), 66);
        assert!(b.windows(2).all(|w| w[0].valid < w[1].valid));
        assert_eq!(s[0], (-5, 0, 'n', 1));
        assert_eq!(s[5], (0, 0, 'n', 6));
        // cycle 6's nowcast replaces cycle 0's forecast f001..f006
        assert_eq!(s[6], (1, 6, 'n', 1));
        assert_eq!(s[11], (6, 6, 'n', 6));
        assert_eq!(s[12], (7, 12, 'n', 1));
        assert_eq!(s[17], (12, 12, 'n', 6));
        assert_eq!(s[18], (13, 12, 'f', 1));
        assert_eq!(s[65], (60, 12, 'f', 48));
        // nothing from an older cycle where a newer one has the hour
        for (v, c, _, _) in &s {
            let newest = [0i64, 6, 12]
                .into_iter()
                .filter(|c| {
                    all.iter()
                        .any(|x| x.cycle == DAY0 + c * H && x.valid == DAY0 + v * H)
                })
                .max();
            assert_eq!(Some(*c), newest, "valid {v}");
        }
    }

    #[test]
    fn best_original() {
        let all = runs(&[0, 6, 12], 48);
        let b = best_time_series(&all, BestRule::Original);
        let s = summary(&b);
        assert!(b.iter().all(|x| x.hour_kind == HourKind::Forecast));
        // valid 1 .. 60
        assert_eq!(s.len(), 60);
        assert_eq!(s[0], (1, 0, 'f', 1));
        assert_eq!(s[5], (6, 0, 'f', 6));
        assert_eq!(s[6], (7, 6, 'f', 1));
        assert_eq!(s[12], (13, 12, 'f', 1));
        assert_eq!(s[59], (60, 12, 'f', 48));
        // smallest forecast hour per valid time
        for x in &b {
            let min = all
                .iter()
                .filter(|y| y.hour_kind == HourKind::Forecast && y.valid == x.valid)
                .map(|y| y.hour)
                .min();
            assert_eq!(Some(x.hour), min);
        }
    }

    #[test]
    fn best_with_incomplete_newest_cycle() {
        // cycle 12 has only n001..n006 and f001..f002 so far
        let mut all = runs(&[0, 6], 48);
        for h in 1..=6 {
            all.push(m(12, HourKind::Nowcast, h));
        }
        all.push(m(12, HourKind::Forecast, 1));
        all.push(m(12, HourKind::Forecast, 2));
        let s = summary(&best_time_series(&all, BestRule::NewestCycle));
        let at = |v: i64| s.iter().find(|x| x.0 == v).copied();
        assert_eq!(at(12), Some((12, 12, 'n', 6)));
        assert_eq!(at(14), Some((14, 12, 'f', 2)));
        // hours cycle 12 does not have yet come from cycle 6's forecast
        assert_eq!(at(15), Some((15, 6, 'f', 9)));
        assert_eq!(at(54), Some((54, 6, 'f', 48)));
        assert_eq!(s.len(), 60);
        let o = summary(&best_time_series(&all, BestRule::Original));
        assert_eq!(o.iter().find(|x| x.0 == 12), Some(&(12, 6, 'f', 6)));
        assert_eq!(o.iter().find(|x| x.0 == 14), Some(&(14, 12, 'f', 2)));
    }

    #[test]
    fn best_nowcast_beats_same_cycle_f000_and_older_forecasts() {
        let mut all = runs(&[0, 6], 12);
        all.push(m(6, HourKind::Forecast, 0));
        let s = summary(&best_time_series(&all, BestRule::NewestCycle));
        assert_eq!(s.iter().find(|x| x.0 == 6), Some(&(6, 6, 'n', 6)));
        let o = summary(&best_time_series(&all, BestRule::Original));
        assert_eq!(o.iter().find(|x| x.0 == 6), Some(&(6, 6, 'f', 0)));
    }

    #[test]
    fn nowcast_only_cycle_and_empty_inputs() {
        let all: Vec<FmrcMember> = (1..=6).map(|h| m(0, HourKind::Nowcast, h)).collect();
        assert_eq!(best_time_series(&all, BestRule::NewestCycle).len(), 6);
        assert!(best_time_series(&all, BestRule::Original).is_empty());
        assert!(best_time_series(&[], BestRule::NewestCycle).is_empty());
        assert!(model_run(&[], 0, RunKinds::Both).is_empty());
        assert!(cycles(&[]).is_empty());
    }

    #[test]
    fn cycles_and_contains() {
        let mut all = runs(&[12, 0, 6], 2);
        all.reverse();
        assert_eq!(cycles(&all), vec![DAY0, DAY0 + 6 * H, DAY0 + 12 * H]);
        let b = best_time_series(&all, BestRule::NewestCycle);
        let newest_f2 = m(12, HourKind::Forecast, 2);
        assert!(contains(&b, &newest_f2.key));
        let old_f1 = m(0, HourKind::Forecast, 1);
        assert!(!contains(&b, &old_f1.key));
        assert!(contains(
            &best_time_series(&all, BestRule::Original),
            &m(0, HourKind::Forecast, 1).key
        ));
    }

    #[test]
    fn order_independent() {
        let all = runs(&[0, 6, 12, 18], 6);
        let mut rev = all.clone();
        rev.reverse();
        let mut rot = all.clone();
        rot.rotate_left(17);
        for rule in [BestRule::NewestCycle, BestRule::Original] {
            let a: Vec<&str> = best_time_series(&all, rule)
                .iter()
                .map(|x| x.key.as_str())
                .collect();
            let b: Vec<&str> = best_time_series(&rev, rule)
                .iter()
                .map(|x| x.key.as_str())
                .collect();
            let c: Vec<&str> = best_time_series(&rot, rule)
                .iter()
                .map(|x| x.key.as_str())
                .collect();
            assert_eq!(a, b);
            assert_eq!(a, c);
        }
    }

    #[test]
    fn wcofs_24h_nowcast() {
        // the caller computes valid; a 24 h nowcast overlapping the previous
        // day's forecast is handled by the same rule
        let cycle = DAY0 + 3 * H;
        let mk = |kind, hour: u16, cyc: i64| FmrcMember {
            key: format!("{cyc}-{kind:?}-{hour}"),
            cycle: cyc,
            hour_kind: kind,
            hour,
            valid: match kind {
                HourKind::Forecast => cyc + i64::from(hour) * H,
                HourKind::Nowcast => cyc - 24 * H + i64::from(hour) * H,
            },
        };
        let prev = cycle - 24 * H;
        let mut all = Vec::new();
        for h in (3..=72).step_by(3) {
            all.push(mk(HourKind::Forecast, h, prev));
            all.push(mk(HourKind::Forecast, h, cycle));
        }
        for h in (3..=24).step_by(3) {
            all.push(mk(HourKind::Nowcast, h, cycle));
        }
        let b = best_time_series(&all, BestRule::NewestCycle);
        assert!(b.iter().all(|x| x.cycle == cycle));
        assert_eq!(b.len(), 8 + 24);
    }
}
