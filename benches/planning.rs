//! Planning scanner: a generated repository of 10,000 tracked files (`PLANNING_BENCH_FILES` to
//! change it), one TODO-style note in every fourth file and a ROADMAP.md; reports the first
//! (cold) scan, a rescan with nothing changed (warm: every blob from the cache) and a rescan
//! after one file changed, and the process's peak resident memory. See bench/README.md.

use architect::planning::scan::{scan, Cache};
use std::process::Command;
use std::time::Instant;

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let n: usize = std::env::var("PLANNING_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(root, &["init", "-q"]);
    let body: String = (0..40)
        .map(|i| format!("fn f{i}(x: u32) -> u32 {{ x + {i} }}\n"))
        .collect();
    for i in 0..n {
        let d = root.join(format!("crate{}/src/m{}", i % 50, i % 7));
        std::fs::create_dir_all(&d).expect("write the generated repository");
        let note = if i % 4 == 0 {
            format!("// TODO: item {i}\n")
        } else {
            String::new()
        };
        std::fs::write(d.join(format!("f{i}.rs")), format!("{note}{body}"))
            .expect("write the generated repository");
    }
    std::fs::write(
        root.join("ROADMAP.md"),
        "# Next\n- [ ] plugins\n- [ ] sharding\n",
    )
    .expect("write the generated repository");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-qm", "generated"]);
    println!("repository: {n} files + ROADMAP.md");

    let mut cache = Cache::default();
    let t = Instant::now();
    let cold = scan(root, &mut cache).expect("scan");
    let cold_t = t.elapsed();
    let t = Instant::now();
    let warm = scan(root, &mut cache).expect("scan");
    let warm_t = t.elapsed();
    std::fs::write(
        root.join("crate0/src/m0/f0.rs"),
        format!("// TODO: item 0, edited\n{body}"),
    )
    .expect("write the generated repository");
    let t = Instant::now();
    let one = scan(root, &mut cache).expect("scan");
    let one_t = t.elapsed();
    println!("| scan | files read | items | time |");
    println!("|---|---|---|---|");
    println!(
        "| cold | {} | {} | {:.0} ms |",
        cold.files_read,
        cold.items.len(),
        cold_t.as_secs_f64() * 1e3
    );
    println!(
        "| warm, nothing changed | {} | {} | {:.0} ms |",
        warm.files_read,
        warm.items.len(),
        warm_t.as_secs_f64() * 1e3
    );
    println!(
        "| one file changed | {} | {} | {:.0} ms |",
        one.files_read,
        one.items.len(),
        one_t.as_secs_f64() * 1e3
    );
    println!(
        "peak resident memory of the bench process: {} MiB",
        peak_rss_kib() / 1024
    );
}
