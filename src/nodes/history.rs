//! Chart series from metric history: `GET /api/nodes/{id}/metrics?range=24h|7d` and the
//! server-side SVG chart of the Nodes panel. Rows (raw or rolled up) are averaged into fixed
//! buckets, weighted by how many heartbeats each row stands for.

use super::retention::Acc;
use super::store::{self, Sample};
use super::*;

crate::text_enum! {
    /// How far back a chart goes.
    pub enum MetricRange ("range") {
        /// 24 hours in 5-minute buckets (288 points).
        Day = "24h",
        /// 7 days in hourly buckets (168 points).
        Week = "7d",
    }
}

impl MetricRange {
    pub fn span(self) -> time::Duration {
        match self {
            MetricRange::Day => time::Duration::hours(24),
            MetricRange::Week => time::Duration::days(7),
        }
    }

    pub fn bucket_s(self) -> i64 {
        match self {
            MetricRange::Day => 300,
            MetricRange::Week => 3600,
        }
    }

    pub fn buckets(self) -> usize {
        (self.span().whole_seconds() / self.bucket_s()) as usize
    }
}

/// One bucket's averages. Percentages are 0–100.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricPoint {
    /// Bucket start.
    pub at: String,
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub disk_percent: f64,
    pub load1: f64,
    /// Heartbeats averaged into this point.
    pub samples: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetricSeries {
    pub node_id: i64,
    pub range: String,
    pub bucket_s: i64,
    pub from: String,
    pub to: String,
    /// Buckets without any heartbeat are left out.
    pub points: Vec<MetricPoint>,
}

pub async fn series(
    state: &NodesState,
    node_id: i64,
    range: MetricRange,
) -> Result<MetricSeries, sqlx::Error> {
    let now = state.clock.now();
    let from = aligned(now - range.span(), range.bucket_s());
    let rows = store::samples_since(&state.db, node_id, &crate::clock::format(from)).await?;
    let slots = bucketize(&rows, from, range.bucket_s(), range.buckets() + 1);
    let points = slots
        .into_iter()
        .enumerate()
        .filter(|(_, a)| !a.is_empty())
        .map(|(i, a)| {
            let at = from + time::Duration::seconds(i as i64 * range.bucket_s());
            let s = a.sample(crate::clock::format(at), range.bucket_s());
            MetricPoint {
                at: s.at,
                cpu_percent: round1(s.cpu_percent),
                memory_percent: round1(percent(s.mem_used as u64, s.mem_total as u64)),
                disk_percent: round1(percent(s.disk_used as u64, s.disk_total as u64)),
                load1: (s.load1 * 100.0).round() / 100.0,
                samples: s.samples,
            }
        })
        .collect();
    Ok(MetricSeries {
        node_id,
        range: range.as_str().to_string(),
        bucket_s: range.bucket_s(),
        from: crate::clock::format(from),
        to: crate::clock::format(now),
        points,
    })
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn aligned(t: OffsetDateTime, bucket_s: i64) -> OffsetDateTime {
    let s = t.unix_timestamp().div_euclid(bucket_s) * bucket_s;
    OffsetDateTime::from_unix_timestamp(s).unwrap_or(t)
}

/// Folds rows into `n` buckets of `bucket_s` seconds from `from`; rows outside are dropped.
pub fn bucketize(rows: &[Sample], from: OffsetDateTime, bucket_s: i64, n: usize) -> Vec<Acc> {
    let mut out = vec![Acc::default(); n];
    for r in rows {
        let Some(t) = crate::clock::parse(&r.at) else {
            continue;
        };
        let i = (t - from).whole_seconds().div_euclid(bucket_s);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            slot.add(r);
        }
    }
    out
}

/// An inline SVG chart drawn server-side: polyline segments (gaps where no heartbeat came) in
/// a `WIDTH` × `HEIGHT` box, 0 % at the bottom.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    pub cpu: Vec<String>,
    pub memory: Vec<String>,
    pub has_data: bool,
}

pub const CHART_WIDTH: f64 = 288.0;
pub const CHART_HEIGHT: f64 = 60.0;

impl Chart {
    pub fn from_series(s: &MetricSeries) -> Chart {
        let from = crate::clock::parse(&s.from);
        let to = crate::clock::parse(&s.to);
        let (Some(from), Some(to)) = (from, to) else {
            return Chart::default();
        };
        let span = (to - from).as_seconds_f64().max(1.0);
        let x_of = |p: &MetricPoint| {
            crate::clock::parse(&p.at)
                .map(|t| ((t - from).as_seconds_f64() / span * CHART_WIDTH).clamp(0.0, CHART_WIDTH))
        };
        let mut cpu = Vec::new();
        let mut memory = Vec::new();
        let mut seg_cpu = String::new();
        let mut seg_mem = String::new();
        let mut last_x: Option<f64> = None;
        let step = s.bucket_s as f64 / span * CHART_WIDTH;
        for p in &s.points {
            let Some(x) = x_of(p) else { continue };
            if last_x.is_some_and(|lx| x - lx > step * 1.5) {
                cpu.push(std::mem::take(&mut seg_cpu));
                memory.push(std::mem::take(&mut seg_mem));
            }
            let y = |v: f64| CHART_HEIGHT - (v.clamp(0.0, 100.0) / 100.0 * CHART_HEIGHT);
            seg_cpu.push_str(&format!("{x:.1},{:.1} ", y(p.cpu_percent)));
            seg_mem.push_str(&format!("{x:.1},{:.1} ", y(p.memory_percent)));
            last_x = Some(x);
        }
        if !seg_cpu.is_empty() {
            cpu.push(seg_cpu);
            memory.push(seg_mem);
        }
        // A lone point is drawn as a short flat line so it shows.
        for seg in cpu.iter_mut().chain(memory.iter_mut()) {
            let pts: Vec<&str> = seg.split_whitespace().collect();
            if pts.len() == 1 {
                if let Some((x, y)) = pts[0].split_once(',') {
                    let x: f64 = x.parse().unwrap_or(0.0);
                    *seg = format!(
                        "{:.1},{y} {:.1},{y}",
                        (x - 2.0).max(0.0),
                        (x + 2.0).min(CHART_WIDTH)
                    );
                }
            }
        }
        Chart {
            has_data: !s.points.is_empty(),
            cpu,
            memory,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: &str, cpu: f64, samples: i64) -> Sample {
        Sample {
            at: at.into(),
            resolution: 0,
            samples,
            cpu_percent: cpu,
            mem_used: 50,
            mem_total: 100,
            disk_used: 1,
            disk_total: 4,
            load1: 0.5,
        }
    }

    #[test]
    fn buckets_weigh_rollups_by_their_samples() {
        let from = crate::clock::parse("2026-01-01T00:00:00Z").unwrap();
        let rows = vec![
            sample("2026-01-01T00:00:00.000000Z", 10.0, 59),
            sample("2026-01-01T00:04:59.000000Z", 70.0, 1),
            sample("2026-01-01T00:05:00.000000Z", 90.0, 1),
            sample("2025-12-31T23:59:59.000000Z", 100.0, 1),
            sample("2026-01-02T00:00:00.000000Z", 100.0, 1),
        ];
        let b = bucketize(&rows, from, 300, 2);
        let first = b[0].sample("x".into(), 300);
        assert_eq!(first.samples, 60);
        assert!((first.cpu_percent - 11.0).abs() < 1e-9);
        assert_eq!(b[1].sample("x".into(), 300).samples, 1);
    }

    #[test]
    fn chart_breaks_lines_at_gaps() {
        let s = MetricSeries {
            node_id: 1,
            range: "24h".into(),
            bucket_s: 300,
            from: "2026-01-01T00:00:00.000000Z".into(),
            to: "2026-01-02T00:00:00.000000Z".into(),
            points: ["00:00", "00:05", "06:00"]
                .iter()
                .map(|t| MetricPoint {
                    at: format!("2026-01-01T{t}:00.000000Z"),
                    cpu_percent: 50.0,
                    memory_percent: 100.0,
                    disk_percent: 0.0,
                    load1: 0.0,
                    samples: 1,
                })
                .collect(),
        };
        let c = Chart::from_series(&s);
        assert!(c.has_data);
        assert_eq!(c.cpu.len(), 2, "{:?}", c.cpu);
        assert_eq!(c.cpu[0].trim(), "0.0,30.0 1.0,30.0");
        assert_eq!(
            c.memory[1], "70.0,0.0 74.0,0.0",
            "a lone point becomes a short line"
        );
    }
}
