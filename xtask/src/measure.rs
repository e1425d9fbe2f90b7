//! Reading processes: resident memory and CPU time from `/proc`, a child's output lines, and
//! quantiles of the load generator's histograms.

use std::process::Child;

/// Resident memory of a process, KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of a process, seconds.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

pub(crate) fn read_line(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.as_mut().ok_or("no stdout")?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while std::io::Read::read(stdout, &mut byte).map_err(|e| e.to_string())? == 1
        && byte[0] != b'\n'
    {
        line.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

pub(crate) fn field(line: &str, key: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
        .unwrap_or(0)
}

/// The value below which `quantile` of the samples fall (buckets grow by 5%, in µs).
pub(crate) fn quantile(counts: &[u64], quantile: f64) -> Option<u64> {
    let total: u64 = counts.iter().sum();
    let rank = (quantile * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    counts.iter().enumerate().find_map(|(i, count)| {
        seen += count;
        (total > 0 && seen >= rank).then(|| 1.05f64.powi(i as i32).round() as u64)
    })
}
