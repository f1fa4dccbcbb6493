//! Plain-text tables and progress bars for terminal output (`--json` prints the API's JSON
//! instead).

use std::io::Write;
use std::time::Instant;

/// Prints rows under headers, each column as wide as its widest cell (max 60 characters).
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    const MAX: usize = 60;
    let cut = |s: &str| -> String {
        let s = s.replace(['\n', '\r', '\t'], " ");
        if s.chars().count() > MAX {
            format!("{}…", s.chars().take(MAX - 1).collect::<String>())
        } else {
            s
        }
    };
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    let n = rows.len();
    for r in rows {
        line(r);
    }
    if n == 0 {
        println!("(none)");
    }
}

pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// `[3/12] ███████░░░░░ 4.2 s  text`: redrawn in place on a terminal, one line each otherwise.
pub fn progress(tty: bool, done: usize, total: usize, text: &str, started: Instant) {
    const WIDTH: usize = 20;
    let filled = WIDTH * done / total.max(1);
    let bar = format!("{}{}", "█".repeat(filled), "░".repeat(WIDTH - filled));
    let line = format!(
        "[{done}/{total}] {bar} {:.1} s  {text}",
        started.elapsed().as_secs_f64()
    );
    let mut err = std::io::stderr();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
        if done > 0 && !text.ends_with('…') {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    } else if !text.ends_with('…') {
        let _ = writeln!(err, "{line}");
    }
}
