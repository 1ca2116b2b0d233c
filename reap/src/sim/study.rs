//! The exploration study (issue 5, `docs/reap-study.md`): the LinShim6 testbed rebuilt
//! in the [simulator](super) — two hosts with 3 locators each, 9 pairs, 18
//! unidirectional paths — and the two experiments of the 2011 evaluation.
//!
//! # Definitions
//!
//! - **Detection**: the first [`Event::PathFailed`] of either host after the failure was
//!   injected, i.e. the first Send Timer expiry (RFC 5534 §6.4). It is also the moment
//!   the first probe leaves, which is where the 2011 measurements started.
//! - **Exploration time**: from detection to the first instant at which both hosts are
//!   Operational *and* each host's current sending pair works in its direction (payload
//!   flows both ways again). It excludes the Send Timeout itself (≈ 15 s before
//!   detection), as the 2011 figures do.
//! - **First probe succeeds**: the detecting host sent exactly one Probe with
//!   Sta = Exploring before the exploration ended; its first probe did the job, no
//!   retransmission was needed.
//! - **Probes per recovery**: every Probe sent by both hosts from the failure until 10 s
//!   after the exploration ended (so the confirmations are counted), averaged over trials.
//! - **Best two** (delay experiment): a host's new sending pair has one of the two lowest
//!   delays among the 8 pairs still working; counted for both hosts of every trial.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use shim6_wire::shim6::probe::ReapState;

use super::{Action, Host, Path, Sim, SimConfig, SimError, Traffic};
use crate::config::Config;
use crate::io::Event;
use crate::rng::Rng;

/// Locators per host in the LinShim6 testbed.
pub const TESTBED_LOCATORS: usize = 3;

/// Virtual time before the failure, for the timers to settle into normal operation.
pub const WARM_UP: Duration = Duration::from_secs(5);

/// Time after recovery during which late probes still count.
pub const SETTLE: Duration = Duration::from_secs(10);

/// A trial that has not recovered this long after the failure counts as not recovered.
pub const TRIAL_LIMIT: Duration = Duration::from_secs(900);

/// Study parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyConfig {
    /// Numbers of broken unidirectional paths (2011: 2, 4, 8, 12, 16).
    pub broken: Vec<usize>,
    /// Trials per number of broken paths (2011: 200).
    pub broken_trials: usize,
    /// Failures of the current pair in the delay experiment (2011: 500).
    pub delay_trials: usize,
    /// Probes per burst in the delay experiment's burst variant (2011: 4).
    pub burst: usize,
    /// REAP configuration of both hosts (the burst variant overrides `burst`).
    pub reap: Config,
    /// Payload interval of each sending host.
    pub traffic_interval: Duration,
    /// Only host A sends payload; B answers with Keepalives (RFC 5534 App. A example 3).
    /// Off by default: both hosts send, like an interactive session.
    pub one_way: bool,
    /// One-way delay of every path in the broken-paths experiment.
    pub path_delay: Duration,
    /// Base seed; trial `k` of an experiment uses a seed derived from it.
    pub seed: u64,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            broken: vec![2, 4, 8, 12, 16],
            broken_trials: 200,
            delay_trials: 500,
            burst: 4,
            reap: Config::default(),
            traffic_interval: Duration::from_millis(100),
            one_way: false,
            path_delay: Duration::from_millis(1),
            seed: 2011,
        }
    }
}

/// The outcome of one broken-paths trial.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenTrial {
    /// Whether both directions work again within [`TRIAL_LIMIT`].
    pub recovered: bool,
    /// Exploration time (see the module definitions).
    pub exploration: Duration,
    /// The detecting host needed a single Exploring probe.
    pub first_probe: bool,
    /// Probes sent by both hosts.
    pub probes: u64,
}

/// Summary of the trials for one number of broken paths.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokenSummary {
    /// Broken unidirectional paths.
    pub broken: usize,
    /// Trials run.
    pub trials: usize,
    /// Trials that recovered.
    pub recovered: usize,
    /// Percentage of trials in which the first probe succeeded.
    pub first_probe_pct: f64,
    /// Exploration time percentiles (nearest rank) and maximum, in ms, over recovered
    /// trials.
    pub p50_ms: f64,
    /// 80th percentile, ms.
    pub p80_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Mean probes (both hosts) per trial.
    pub probes_per_recovery: f64,
}

/// Summary of one variant of the delay experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct DelaySummary {
    /// Probes per phase start.
    pub burst: usize,
    /// Trials run.
    pub trials: usize,
    /// Trials that recovered.
    pub recovered: usize,
    /// Percentage of host choices (two per trial) that are among the two fastest pairs.
    pub best2_pct: f64,
    /// The same, counting only the host that detected the failure.
    pub detector_best2_pct: f64,
    /// Mean probes (both hosts) per trial.
    pub probes_per_recovery: f64,
}

/// The whole study.
#[derive(Debug, Clone, PartialEq)]
pub struct StudyReport {
    /// The parameters.
    pub config: StudyConfig,
    /// One row per number of broken paths.
    pub broken: Vec<BrokenSummary>,
    /// Delay experiment, plain REAP (burst 1).
    pub plain: DelaySummary,
    /// Delay experiment, with the burst.
    pub burst: DelaySummary,
}

fn sim_config(cfg: &StudyConfig, reap: &Config, seed: u64, delay: Duration) -> SimConfig {
    let send = Traffic::Constant {
        interval: cfg.traffic_interval,
    };
    SimConfig {
        locators: TESTBED_LOCATORS,
        reap: [reap.clone(), reap.clone()],
        traffic: [send, if cfg.one_way { Traffic::Silent } else { send }],
        delay,
        seed,
        current: (0, 0),
    }
}

/// Derives the seed of trial `k` of experiment `exp` from the base seed.
fn trial_seed(base: u64, exp: u64, k: u64) -> u64 {
    let mut r = Rng::from_u64(base ^ exp.rotate_left(32) ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    r.next_u64()
}

/// Draws `n` broken unidirectional paths: both directions of the current pair plus
/// `n − 2` others, uniformly, such that each direction keeps at least one working path
/// (otherwise no recovery is possible and the trial says nothing about exploration).
pub fn draw_broken_paths(sim: &Sim, n: usize, rng: &mut Rng) -> Vec<Path> {
    let current = sim.reap(Host::A).current_pair();
    let Some(cur) = sim.path_of(Host::A, current) else {
        return Vec::new();
    };
    let fixed = [cur, cur.reverse()];
    let others: Vec<Path> = sim
        .paths()
        .into_iter()
        .filter(|p| !fixed.contains(p))
        .collect();
    let per_dir = sim.locators() * sim.locators();
    let extra = n.saturating_sub(2).min(others.len());
    loop {
        // Partial Fisher–Yates: the first `extra` entries are a uniform sample.
        let mut pool = others.clone();
        for i in 0..extra {
            let j = i + rng.index(pool.len() - i);
            pool.swap(i, j);
        }
        let mut chosen: Vec<Path> = fixed.to_vec();
        chosen.extend_from_slice(&pool[..extra]);
        let ok = Host::BOTH
            .into_iter()
            .all(|h| chosen.iter().filter(|p| p.from == h).count() < per_dir);
        if ok {
            return chosen;
        }
    }
}

/// Runs the simulation after a failure until both directions work again, then
/// [`SETTLE`] more. Returns (detection, recovery) instants and the number of Exploring
/// probes the detector sent before recovery.
fn run_recovery(
    sim: &mut Sim,
    fail_at: Instant,
) -> Result<Option<(Instant, Instant, Host, u64)>, SimError> {
    let exploring_before = [
        sim.reap(Host::A).stats().exploring_probes_sent,
        sim.reap(Host::B).stats().exploring_probes_sent,
    ];
    let rec = sim.run_until_cond(WARM_UP + TRIAL_LIMIT, |s| s.converged())?;
    let Some(rec) = rec else {
        return Ok(None);
    };
    let detection = Host::BOTH
        .into_iter()
        .filter_map(|h| {
            sim.host(h)
                .events
                .iter()
                .find(|(t, e)| *t >= fail_at && matches!(e, Event::PathFailed { .. }))
                .map(|(t, _)| (*t, h))
        })
        .min();
    let Some((detected, detector)) = detection else {
        // Recovered without any exploration (cannot happen: the current pair is cut).
        return Ok(None);
    };
    let exploring =
        sim.reap(detector).stats().exploring_probes_sent - exploring_before[detector as usize];
    sim.run_for(SETTLE)?;
    Ok(Some((detected, rec, detector, exploring)))
}

/// One trial of the broken-paths experiment.
pub fn broken_trial(
    cfg: &StudyConfig,
    n: usize,
    seed: u64,
    epoch: Instant,
) -> Result<BrokenTrial, SimError> {
    let mut sim = Sim::new(sim_config(cfg, &cfg.reap, seed, cfg.path_delay), epoch)?;
    let mut rng = Rng::from_u64(seed ^ 0x5eed);
    sim.run_until(WARM_UP)?;
    let broken = draw_broken_paths(&sim, n, &mut rng);
    for p in broken {
        sim.apply(Action::Cut(p));
    }
    let fail_at = sim.now();
    let probes_before = sim.probes_sent_total();
    Ok(match run_recovery(&mut sim, fail_at)? {
        Some((detected, rec, _, exploring)) => BrokenTrial {
            recovered: true,
            exploration: rec.saturating_duration_since(detected),
            first_probe: exploring == 1,
            probes: sim.probes_sent_total() - probes_before,
        },
        None => BrokenTrial {
            recovered: false,
            exploration: TRIAL_LIMIT,
            first_probe: false,
            probes: sim.probes_sent_total() - probes_before,
        },
    })
}

/// One trial of the delay experiment: pair delays are a random permutation of
/// 0, 10, …, 80 ms (the same in both directions), the current pair fails both ways.
/// Returns, per host, whether its new pair is among the two fastest working ones, the
/// detector, and the probes sent; `None` if it did not recover.
pub fn delay_trial(
    cfg: &StudyConfig,
    reap: &Config,
    seed: u64,
    epoch: Instant,
) -> Result<Option<([bool; 2], Host, u64)>, SimError> {
    let mut sim = Sim::new(sim_config(cfg, reap, seed, Duration::ZERO), epoch)?;
    let mut rng = Rng::from_u64(seed ^ 0xde1a);
    let m = sim.locators();
    let mut delays: Vec<u64> = (0..(m * m) as u64).map(|k| k * 10).collect();
    for i in (1..delays.len()).rev() {
        let j = rng.index(i + 1);
        delays.swap(i, j);
    }
    let delay_of = |a: usize, b: usize| delays[a * m + b];
    for a in 0..m {
        for b in 0..m {
            sim.set_pair_delay(a, b, Duration::from_millis(delay_of(a, b)));
        }
    }
    sim.run_until(WARM_UP)?;
    let (ca, cb) = (0, 0);
    sim.apply(Action::Cut(Path::new(Host::A, ca, cb)));
    sim.apply(Action::Cut(Path::new(Host::B, cb, ca)));
    let fail_at = sim.now();
    let probes_before = sim.probes_sent_total();
    let Some((_, _, detector, _)) = run_recovery(&mut sim, fail_at)? else {
        return Ok(None);
    };
    // The two fastest of the pairs that still work.
    let mut working: Vec<u64> = (0..m)
        .flat_map(|a| (0..m).map(move |b| (a, b)))
        .filter(|&(a, b)| (a, b) != (ca, cb))
        .map(|(a, b)| delay_of(a, b))
        .collect();
    working.sort_unstable();
    let second = working.get(1).copied().unwrap_or(u64::MAX);
    let mut best2 = [false; 2];
    for h in Host::BOTH {
        let pair = sim.reap(h).current_pair();
        if let Some(p) = sim.path_of(h, pair) {
            let (a, b) = match h {
                Host::A => (p.from_idx, p.to_idx),
                Host::B => (p.to_idx, p.from_idx),
            };
            best2[h as usize] = delay_of(a, b) <= second;
        }
    }
    Ok(Some((
        best2,
        detector,
        sim.probes_sent_total() - probes_before,
    )))
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs every trial of the broken-paths experiment for `n` broken paths.
pub fn run_broken(cfg: &StudyConfig, n: usize, epoch: Instant) -> Result<BrokenSummary, SimError> {
    let mut times = Vec::with_capacity(cfg.broken_trials);
    let (mut first, mut probes, mut recovered) = (0usize, 0u64, 0usize);
    for k in 0..cfg.broken_trials {
        let t = broken_trial(cfg, n, trial_seed(cfg.seed, n as u64, k as u64), epoch)?;
        probes += t.probes;
        if t.first_probe {
            first += 1;
        }
        if t.recovered {
            recovered += 1;
            times.push(t.exploration.as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(f64::total_cmp);
    let trials = cfg.broken_trials.max(1) as f64;
    Ok(BrokenSummary {
        broken: n,
        trials: cfg.broken_trials,
        recovered,
        first_probe_pct: 100.0 * first as f64 / trials,
        p50_ms: percentile(&times, 50.0),
        p80_ms: percentile(&times, 80.0),
        p95_ms: percentile(&times, 95.0),
        max_ms: times.last().copied().unwrap_or(0.0),
        probes_per_recovery: probes as f64 / trials,
    })
}

/// Runs every trial of the delay experiment with `burst` probes per phase start.
pub fn run_delay(
    cfg: &StudyConfig,
    burst: usize,
    epoch: Instant,
) -> Result<DelaySummary, SimError> {
    let reap = Config {
        burst,
        ..cfg.reap.clone()
    };
    let (mut best, mut det_best, mut probes, mut recovered) = (0usize, 0usize, 0u64, 0usize);
    for k in 0..cfg.delay_trials {
        // The same seeds for both variants: same delays, same timer draws up to the
        // first probe.
        let seed = trial_seed(cfg.seed, 1000, k as u64);
        if let Some((b2, det, p)) = delay_trial(cfg, &reap, seed, epoch)? {
            recovered += 1;
            best += b2.iter().filter(|x| **x).count();
            det_best += usize::from(b2[det as usize]);
            probes += p;
        }
    }
    let trials = cfg.delay_trials.max(1) as f64;
    Ok(DelaySummary {
        burst,
        trials: cfg.delay_trials,
        recovered,
        best2_pct: 100.0 * best as f64 / (2.0 * trials),
        detector_best2_pct: 100.0 * det_best as f64 / trials,
        probes_per_recovery: probes as f64 / trials,
    })
}

/// Runs the whole study.
pub fn run(cfg: &StudyConfig, epoch: Instant) -> Result<StudyReport, SimError> {
    let broken = cfg
        .broken
        .iter()
        .map(|&n| run_broken(cfg, n, epoch))
        .collect::<Result<Vec<_>, _>>()?;
    let plain = run_delay(cfg, 1, epoch)?;
    let burst = run_delay(cfg, cfg.burst, epoch)?;
    Ok(StudyReport {
        config: cfg.clone(),
        broken,
        plain,
        burst,
    })
}

/// One published 2011 LinShim6 figure of the broken-paths experiment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// Broken unidirectional paths.
    pub broken: usize,
    /// What was published, as text.
    pub text: &'static str,
}

/// The 2011 LinShim6 figures (real hardware), for the tables.
pub const LINSHIM6_2011: &[Published] = &[
    Published {
        broken: 2,
        text: "first probe 86 %, 100 % < 600 ms",
    },
    Published {
        broken: 16,
        text: "p50 7 s, p80 17 s, p95 31 s",
    },
];

/// 2011: new pair among the two fastest, plain REAP and with a burst of 4.
pub const LINSHIM6_2011_BEST2: (f64, f64) = (21.5, 46.1);

impl StudyReport {
    /// The JSON object of issue 5:
    /// `{"broken": {"2": {"trials", "first_probe_pct", "p50_ms", "p80_ms", "p95_ms",
    /// "max_ms", "probes_per_recovery"}, …}, "delay": {"plain_best2_pct",
    /// "burst_best2_pct", "burst_size"}}`.
    pub fn to_json(&self) -> String {
        let mut s = String::from("{\"broken\": {");
        for (i, b) in self.broken.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            let _ = write!(
                s,
                "\"{}\": {{\"trials\": {}, \"first_probe_pct\": {:.1}, \"p50_ms\": {:.1}, \
                 \"p80_ms\": {:.1}, \"p95_ms\": {:.1}, \"max_ms\": {:.1}, \
                 \"probes_per_recovery\": {:.2}}}",
                b.broken,
                b.trials,
                b.first_probe_pct,
                b.p50_ms,
                b.p80_ms,
                b.p95_ms,
                b.max_ms,
                b.probes_per_recovery
            );
        }
        let _ = write!(
            s,
            "}}, \"delay\": {{\"plain_best2_pct\": {:.1}, \"burst_best2_pct\": {:.1}, \
             \"burst_size\": {}}}}}",
            self.plain.best2_pct, self.burst.best2_pct, self.burst.burst
        );
        s
    }

    /// The same numbers as readable tables, with the 2011 figures alongside.
    pub fn to_tables(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let _ = writeln!(
            s,
            "REAP exploration study: 3x3 locators, 9 pairs, 18 unidirectional paths; {} a \
             packet every {} ms; seed {}",
            if c.one_way {
                "only A sends"
            } else {
                "both hosts send"
            },
            c.traffic_interval.as_millis(),
            c.seed
        );
        let _ = writeln!(
            s,
            "\nBroken unidirectional paths (current pair broken both ways), {} trials each, \
             {} ms paths. Exploration time = first Send Timer expiry -> both directions \
             working again.",
            c.broken_trials,
            c.path_delay.as_millis()
        );
        let _ = writeln!(
            s,
            "{:>3} | {:>9} | {:>11} | {:>8} | {:>8} | {:>8} | {:>8} | {:>13} | 2011",
            "n", "recovered", "first probe", "p50 ms", "p80 ms", "p95 ms", "max ms", "probes/recov",
        );
        let _ = writeln!(s, "{}", "-".repeat(112));
        for b in &self.broken {
            let old = LINSHIM6_2011
                .iter()
                .find(|r| r.broken == b.broken)
                .map_or("", |r| r.text);
            let _ = writeln!(
                s,
                "{:>3} | {:>4}/{:<4} | {:>9.1} % | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>13.2} | {}",
                b.broken,
                b.recovered,
                b.trials,
                b.first_probe_pct,
                b.p50_ms,
                b.p80_ms,
                b.p95_ms,
                b.max_ms,
                b.probes_per_recovery,
                old
            );
        }
        let _ = writeln!(
            s,
            "\nPaths of 0, 10, ..., 80 ms (random per pair, same both ways), {} failures of the \
             current pair: new pair among the two fastest working pairs.",
            c.delay_trials
        );
        let _ = writeln!(
            s,
            "{:>10} | {:>9} | {:>16} | {:>16} | {:>13} | 2011",
            "variant", "recovered", "best two (both)", "best two (det.)", "probes/recov"
        );
        let _ = writeln!(s, "{}", "-".repeat(96));
        for (name, d, old) in [
            ("plain", &self.plain, LINSHIM6_2011_BEST2.0),
            ("burst", &self.burst, LINSHIM6_2011_BEST2.1),
        ] {
            let _ = writeln!(
                s,
                "{:>10} | {:>4}/{:<4} | {:>14.1} % | {:>14.1} % | {:>13.2} | {:.1} %{}",
                format!("{name} ({})", d.burst),
                d.recovered,
                d.trials,
                d.best2_pct,
                d.detector_best2_pct,
                d.probes_per_recovery,
                old,
                if d.burst > 1 { " (burst of 4)" } else { "" }
            );
        }
        s
    }
}

/// Whether both hosts are Operational (used by tests of the study helpers).
pub fn both_operational(sim: &Sim) -> bool {
    Host::BOTH
        .into_iter()
        .all(|h| sim.reap(h).state() == ReapState::Operational)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_draw_keeps_a_path_per_direction_and_includes_current() {
        let epoch = crate::testutil::epoch();
        let sim = Sim::new(SimConfig::default(), epoch).unwrap();
        let mut rng = Rng::from_u64(5);
        for n in [2, 4, 8, 12, 16] {
            for _ in 0..50 {
                let b = draw_broken_paths(&sim, n, &mut rng);
                assert_eq!(b.len(), n);
                assert!(b.contains(&Path::new(Host::A, 0, 0)));
                assert!(b.contains(&Path::new(Host::B, 0, 0)));
                for h in Host::BOTH {
                    assert!(b.iter().filter(|p| p.from == h).count() < 9);
                }
                let mut d = b.clone();
                d.sort();
                d.dedup();
                assert_eq!(d.len(), n, "no duplicates");
            }
        }
    }

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 5.0);
        assert_eq!(percentile(&v, 80.0), 8.0);
        assert_eq!(percentile(&v, 95.0), 10.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn small_study_json_has_the_issue_shape() {
        let cfg = StudyConfig {
            broken: vec![2, 16],
            broken_trials: 3,
            delay_trials: 3,
            ..StudyConfig::default()
        };
        let r = run(&cfg, crate::testutil::epoch()).unwrap();
        let j = r.to_json();
        assert!(j.starts_with("{\"broken\": {\"2\": {\"trials\": 3, \"first_probe_pct\": "));
        for k in [
            "\"16\": {",
            "\"p50_ms\"",
            "\"p80_ms\"",
            "\"p95_ms\"",
            "\"max_ms\"",
            "\"probes_per_recovery\"",
            "\"delay\": {\"plain_best2_pct\": ",
            "\"burst_best2_pct\"",
            "\"burst_size\": 4}}",
        ] {
            assert!(j.contains(k), "{k} missing in {j}");
        }
        assert_eq!(j.matches('{').count(), j.matches('}').count());
        assert!(r.broken.iter().all(|b| b.recovered == 3), "{r:?}");
        let t = r.to_tables();
        assert!(t.contains("first probe") && t.contains("burst (4)"));
    }
}
