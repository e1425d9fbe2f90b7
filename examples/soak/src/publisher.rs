//! The publisher: numbered events, the channels in turn, each published until some
//! instance stores it — retried with one idempotency key, so a retry after an answer lost in
//! a fault returns the first id instead of storing the event twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

use crate::subscribers::CHANNELS;

/// Per channel, the id of event `seq` at `seq - 1`.
pub(crate) type Published = Arc<Mutex<Vec<Vec<String>>>>;

pub(crate) struct Publisher {
    http: reqwest::Client,
    /// The demo instances' ports.
    ports: Vec<u16>,
    pub(crate) published: Published,
    pub(crate) retries: Arc<AtomicU64>,
    run: u64,
    turn: usize,
}

impl Publisher {
    pub(crate) fn new(ports: Vec<u16>, run: u64) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Publisher {
            http,
            ports,
            published: Arc::new(Mutex::new(vec![Vec::new(); CHANNELS.len()])),
            retries: Arc::default(),
            run,
            turn: 0,
        })
    }

    /// Publishes the next event of `channel`; retries (each instance in turn) until one
    /// stores it or `give_up` is set.
    pub(crate) async fn publish_next(
        &mut self,
        channel: usize,
        give_up: &AtomicBool,
    ) -> Result<(), String> {
        let seq = self.published.lock().await[channel].len() as u64 + 1;
        let key = format!("soak-{}-{}-{seq}", self.run, CHANNELS[channel]);
        let body = serde_json::json!({"channel": CHANNELS[channel], "data": seq.to_string()});
        let mut last_error = String::new();
        loop {
            if give_up.load(Ordering::Relaxed) {
                return Err(format!(
                    "event {seq} of {} never stored: {last_error}",
                    CHANNELS[channel]
                ));
            }
            let port = self.ports[self.turn % self.ports.len()];
            let answer = self
                .http
                .post(format!("http://127.0.0.1:{port}/publish"))
                .header("idempotency-key", &key)
                .json(&body)
                .send()
                .await;
            match answer {
                Ok(response) if response.status().is_success() => {
                    // An answer cut before its body is a publish of unknown outcome: retried,
                    // the key returns the first id if it was stored.
                    match response.json::<serde_json::Value>().await {
                        Ok(json) => match json["id"].as_str() {
                            Some(id) => {
                                self.published.lock().await[channel].push(id.to_owned());
                                return Ok(());
                            }
                            None => last_error = format!("{port}: an answer without an id"),
                        },
                        Err(e) => last_error = format!("{port}: {e}"),
                    }
                }
                Ok(response) => last_error = format!("{port}: {}", response.status()),
                Err(e) => last_error = format!("{port}: {e}"),
            }
            // Another instance next; a short pause so a down cluster is not spun on.
            self.turn += 1;
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
