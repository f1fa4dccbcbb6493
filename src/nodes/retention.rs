//! Bounded metric history: every heartbeat is kept as a raw row for [`RAW_KEEP`]; older raw
//! rows are rolled up into [`ROLLUP_S`]-second averages, which are kept for [`ROLLUP_KEEP`].
//! So a node at a 5 s interval holds at most ~17,300 raw rows plus ~2,000 roll-ups.
//!
//! A bucket cut in two by successive ticks becomes two roll-up rows; readers weigh rows by
//! their `samples`, so that changes no average.

use super::store::{self, RawRow, Sample};
use crate::db::Db;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// Raw heartbeats are kept this long (the 24-hour chart draws from them).
pub const RAW_KEEP: Duration = Duration::hours(24);
/// Roll-ups are kept this long (the 7-day chart).
pub const ROLLUP_KEEP: Duration = Duration::days(7);
/// Finished node commands are kept this long (remote tmux reads add one per call: an open
/// remote pane view adds one a second).
pub const COMMAND_KEEP: Duration = Duration::hours(24);
/// Width of a roll-up bucket, seconds.
pub const ROLLUP_S: i64 = 300;
/// Raw rows rolled up per transaction, so one tick never holds the write lock for long.
const BATCH: i64 = 5_000;

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Report {
    /// Raw rows folded into roll-ups.
    pub rolled_up: u64,
    /// Roll-ups deleted for age.
    pub pruned: u64,
    /// Finished commands deleted for age.
    pub commands_pruned: u64,
}

pub async fn tick(state: &super::NodesState) -> Result<Report, sqlx::Error> {
    tick_at(&state.db, state.clock.now()).await
}

/// One retention pass as of `now`: roll up every raw row older than [`RAW_KEEP`], delete
/// roll-ups older than [`ROLLUP_KEEP`].
pub async fn tick_at(db: &Db, now: OffsetDateTime) -> Result<Report, sqlx::Error> {
    let raw_cutoff = crate::clock::format(now - RAW_KEEP);
    let rollup_cutoff = crate::clock::format(now - ROLLUP_KEEP);
    let mut report = Report::default();
    loop {
        let mut tx = crate::db::begin_write(db).await?;
        let rows = store::raw_rows_before(&mut tx, &raw_cutoff, BATCH).await?;
        let Some(max_id) = rows.iter().map(|r| r.id).max() else {
            break;
        };
        for (node_id, sample) in roll_up(&rows) {
            store::insert_sample(&mut tx, node_id, &sample).await?;
        }
        report.rolled_up += store::delete_raw_rows(&mut tx, &raw_cutoff, max_id).await?;
        tx.commit().await?;
        if (rows.len() as i64) < BATCH {
            break;
        }
    }
    let mut conn = db.acquire().await?;
    report.pruned = store::prune_rollups(&mut conn, &rollup_cutoff).await?;
    let command_cutoff = crate::clock::format(now - COMMAND_KEEP);
    report.commands_pruned = store::prune_finished_commands(&mut conn, &command_cutoff).await?;
    Ok(report)
}

/// Averages raw rows per node and [`ROLLUP_S`] bucket (weighted by their `samples`).
pub fn roll_up(rows: &[RawRow]) -> Vec<(i64, Sample)> {
    let mut buckets: BTreeMap<(i64, i64), Acc> = BTreeMap::new();
    for r in rows {
        let Some(t) = crate::clock::parse(&r.sample.at) else {
            continue;
        };
        let start = t.unix_timestamp().div_euclid(ROLLUP_S) * ROLLUP_S;
        buckets
            .entry((r.node_id, start))
            .or_default()
            .add(&r.sample);
    }
    buckets
        .into_iter()
        .filter_map(|((node, start), acc)| {
            let at = OffsetDateTime::from_unix_timestamp(start).ok()?;
            Some((node, acc.sample(crate::clock::format(at), ROLLUP_S)))
        })
        .collect()
}

/// A weighted running sum of samples.
#[derive(Default, Debug, Clone)]
pub struct Acc {
    n: f64,
    cpu: f64,
    mem_used: f64,
    mem_total: f64,
    disk_used: f64,
    disk_total: f64,
    load1: f64,
}

impl Acc {
    pub fn add(&mut self, s: &Sample) {
        let w = s.samples.max(1) as f64;
        self.n += w;
        self.cpu += s.cpu_percent * w;
        self.mem_used += s.mem_used as f64 * w;
        self.mem_total += s.mem_total as f64 * w;
        self.disk_used += s.disk_used as f64 * w;
        self.disk_total += s.disk_total as f64 * w;
        self.load1 += s.load1 * w;
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0.0
    }

    pub fn sample(&self, at: String, resolution: i64) -> Sample {
        let n = self.n.max(1.0);
        Sample {
            at,
            resolution,
            samples: self.n as i64,
            cpu_percent: self.cpu / n,
            mem_used: (self.mem_used / n) as i64,
            mem_total: (self.mem_total / n) as i64,
            disk_used: (self.disk_used / n) as i64,
            disk_total: (self.disk_total / n) as i64,
            load1: self.load1 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(id: i64, node: i64, at: &str, cpu: f64, mem: i64) -> RawRow {
        RawRow {
            id,
            node_id: node,
            sample: Sample {
                at: at.into(),
                resolution: 0,
                samples: 1,
                cpu_percent: cpu,
                mem_used: mem,
                mem_total: 100,
                disk_used: 10,
                disk_total: 20,
                load1: 1.0,
            },
        }
    }

    #[test]
    fn roll_up_averages_per_node_and_five_minute_bucket() {
        let rows = vec![
            raw(1, 1, "2026-01-01T00:00:05.000000Z", 10.0, 40),
            raw(2, 1, "2026-01-01T00:04:55.000000Z", 30.0, 60),
            raw(3, 1, "2026-01-01T00:05:00.000000Z", 90.0, 90),
            raw(4, 2, "2026-01-01T00:01:00.000000Z", 50.0, 50),
        ];
        let out = roll_up(&rows);
        assert_eq!(out.len(), 3);
        let (node, first) = &out[0];
        assert_eq!(*node, 1);
        assert_eq!(first.at, "2026-01-01T00:00:00.000000Z");
        assert_eq!(first.samples, 2);
        assert_eq!(first.resolution, ROLLUP_S);
        assert!((first.cpu_percent - 20.0).abs() < 1e-9);
        assert_eq!(first.mem_used, 50);
        assert_eq!(out[1].1.at, "2026-01-01T00:05:00.000000Z");
        assert_eq!(out[1].1.samples, 1);
        assert_eq!(out[2].0, 2);
    }

    #[test]
    fn rolling_up_roll_ups_keeps_weights() {
        let mut a = Acc::default();
        let mut s = raw(1, 1, "2026-01-01T00:00:00.000000Z", 10.0, 0).sample;
        s.samples = 3;
        a.add(&s);
        a.add(&raw(2, 1, "2026-01-01T00:00:00.000000Z", 50.0, 0).sample);
        let out = a.sample("x".into(), 300);
        assert_eq!(out.samples, 4);
        assert!((out.cpu_percent - 20.0).abs() < 1e-9);
    }
}
