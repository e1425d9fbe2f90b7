//! Shared pieces of the load generator: options, the latency histogram, payload parsing.

use std::sync::atomic::{AtomicU64, Ordering};

pub mod scan;

/// Which transport the subscribers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `GET /events?channel=…`
    Sse,
    /// `GET /ws?topics=…`
    Ws,
}

/// Command-line options of `loadgen`.
#[derive(Debug, Clone)]
pub struct Options {
    /// `http://host:port` of the server.
    pub url: String,
    /// Subscriber transport.
    pub transport: Transport,
    /// Subscribers to open.
    pub clients: usize,
    /// How many 127.0.0.x source addresses to spread connections over.
    pub sources: usize,
    /// The first x of 127.0.0.x.
    pub source_base: u8,
    /// The channel.
    pub channel: String,
    /// Publishes per second.
    pub rate: u64,
    /// How long to publish.
    pub seconds: f64,
    /// Payload size in bytes (about).
    pub payload: usize,
    /// The first sequence number a publisher uses (later phases start above earlier ones, so
    /// subscribers can tell duplicates).
    pub seq_base: u64,
    /// Publishing connections working at once (at most [`MAX_PUBLISHERS`]).
    pub publishers: usize,
}

/// The most publishing connections one `loadgen publish` opens.
pub const MAX_PUBLISHERS: usize = 8;

impl Options {
    /// Parses `COMMAND --flag value …`.
    pub fn parse(args: &[String]) -> Result<(String, Options), String> {
        let (command, rest) = args
            .split_first()
            .ok_or("usage: loadgen subscribe|publish --url … [flags]")?;
        let mut options = Options {
            url: String::new(),
            transport: Transport::Sse,
            clients: 0,
            sources: 1,
            source_base: 2,
            channel: "bench".into(),
            rate: 100,
            seconds: 5.0,
            payload: 100,
            seq_base: 0,
            publishers: 1,
        };
        let mut flags = rest.iter();
        while let Some(flag) = flags.next() {
            let value = flags
                .next()
                .ok_or_else(|| format!("{flag} needs a value"))?;
            let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v:?}: {e}"));
            match flag.as_str() {
                "--url" => options.url = value.clone(),
                "--transport" => {
                    options.transport = match value.as_str() {
                        "sse" => Transport::Sse,
                        "ws" => Transport::Ws,
                        other => return Err(format!("unknown transport {other:?}")),
                    }
                }
                "--clients" => options.clients = number(value)? as usize,
                "--sources" => options.sources = (number(value)? as usize).max(1),
                "--source-base" => options.source_base = number(value)? as u8,
                "--channel" => options.channel = value.clone(),
                "--rate" => options.rate = number(value)? as u64,
                "--seconds" => options.seconds = number(value)?,
                "--payload" => options.payload = number(value)? as usize,
                "--publishers" => {
                    options.publishers = (number(value)? as usize).clamp(1, MAX_PUBLISHERS)
                }
                "--seq-base" => {
                    options.seq_base = value
                        .parse()
                        .map_err(|e| format!("{flag} {value:?}: {e}"))?
                }
                other => return Err(format!("unknown flag {other:?}")),
            }
        }
        if options.url.is_empty() {
            return Err("--url is required".into());
        }
        Ok((command.clone(), options))
    }

    /// `host:port` of the URL.
    pub fn host(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// The server's socket address.
    pub fn target(&self) -> Result<std::net::SocketAddr, String> {
        self.host()
            .parse()
            .map_err(|e| format!("--url {}: {e}", self.url))
    }
}

/// Finds `t=<ns>`, `k=<publisher>` (0 when absent) and `s=<seq>` in a payload (raw, or inside
/// the WebSocket JSON message): `t=… [k=…] s=…` in that order, one scan.
pub fn parse_payload(payload: &[u8]) -> Option<(u64, usize, u64)> {
    /// The number at the start of `bytes` and the rest after it.
    fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 {
            return None;
        }
        let value = bytes[..digits]
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        Some((value, &bytes[digits..]))
    }
    let at = memchr::memmem::find(payload, b"t=")? + 2;
    let (sent, rest) = number(&payload[at..])?;
    let (publisher, rest) = match rest.strip_prefix(b" k=") {
        Some(rest) => number(rest)?,
        None => (0, rest),
    };
    let (seq, _) = number(rest.strip_prefix(b" s=")?)?;
    Some((sent, publisher as usize, seq))
}

/// Growth factor between histogram buckets: 5% resolution.
const GROWTH: f64 = 1.05;
const BUCKETS: usize = 400;

/// A lock-free log-bucket histogram of microseconds (5% resolution, up to hours).
#[derive(Debug)]
pub struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Histogram {
    fn bucket(micros: u64) -> usize {
        if micros <= 1 {
            return 0;
        }
        ((micros as f64).ln() / GROWTH.ln())
            .ceil()
            .min((BUCKETS - 1) as f64) as usize
    }

    /// Counts one sample.
    pub fn record(&self, micros: u64) {
        self.buckets[Self::bucket(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts per bucket.
    pub fn snapshot(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect()
    }

    /// The counts per bucket, leaving the histogram empty.
    pub fn take(&self) -> Vec<u64> {
        self.buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect()
    }

    /// The value (µs, the bucket's upper bound) below which `quantile` of the samples fall.
    pub fn quantile(counts: &[u64], quantile: f64) -> Option<u64> {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (quantile * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(GROWTH.powi(i as i32).round() as u64);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_raw_and_wrapped() {
        assert_eq!(parse_payload(b"t=123 s=7 p=xx"), Some((123, 0, 7)));
        assert_eq!(
            parse_payload(br#"{"type":"event","data":"t=5 k=3 s=9 p=x"}"#),
            Some((5, 3, 9))
        );
        assert_eq!(parse_payload(b"nothing"), None);
    }

    #[test]
    fn quantiles_are_within_five_percent() {
        let histogram = Histogram::default();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        let counts = histogram.snapshot();
        let p50 = Histogram::quantile(&counts, 0.5).unwrap() as f64;
        let p99 = Histogram::quantile(&counts, 0.99).unwrap() as f64;
        assert!((p50 - 500.0).abs() / 500.0 < 0.06, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.06, "{p99}");
    }
}
