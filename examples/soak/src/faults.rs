//! The faults, one at a time, each healed before the next: brokers killed and restarted or
//! paused (SIGSTOP), instances killed and restarted, clients cut mid-stream, every client of
//! an instance disconnected.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::servers::Process;
use crate::subscribers::Subscriber;

/// A small deterministic generator (xorshift64*): a run is repeated with its seed.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }

    /// A duration between `low` and `high` milliseconds.
    pub(crate) fn millis(&mut self, low: u64, high: u64) -> Duration {
        Duration::from_millis(low + self.below(high - low + 1))
    }
}

/// Everything the faults act on.
pub(crate) struct World {
    pub(crate) redis: Process,
    pub(crate) nats: Process,
    pub(crate) demos: Vec<Process>,
    pub(crate) subscribers: Vec<Subscriber>,
    pub(crate) http: reqwest::Client,
    pub(crate) started: Instant,
    /// What happened, one line each.
    pub(crate) log: Vec<String>,
    pub(crate) counts: BTreeMap<&'static str, u64>,
}

impl World {
    fn note(&mut self, kind: &'static str, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        eprintln!("soak: {at:>7.1} s  {what}");
        self.log.push(format!("{at:>7.1} s  {what}"));
        *self.counts.entry(kind).or_default() += 1;
    }

    /// Applies one fault chosen by `rng` and heals it.
    pub(crate) async fn fault(&mut self, rng: &mut Rng) -> Result<(), String> {
        match rng.below(9) {
            0 | 1 => {
                let length = rng.millis(500, 10_000);
                self.outage(Broker::Nats, length).await
            }
            2 => {
                let length = rng.millis(500, 6_000);
                self.freeze(Broker::Nats, length).await
            }
            3 => {
                let length = rng.millis(500, 10_000);
                self.outage(Broker::Redis, length).await
            }
            4 => {
                let length = rng.millis(500, 6_000);
                self.freeze(Broker::Redis, length).await
            }
            5 => {
                let index = rng.below(self.demos.len() as u64) as usize;
                let length = rng.millis(200, 8_000);
                let demo = &mut self.demos[index];
                demo.kill();
                let name = format!("{} ({})", demo.name, demo.framework());
                tokio::time::sleep(length).await;
                let back = Instant::now();
                self.demos[index].start().await?;
                self.note(
                    "instance killed",
                    format!(
                        "kill {name} for {length:.1?}; ready {:.1?} after restart",
                        back.elapsed()
                    ),
                );
                Ok(())
            }
            6 | 7 => {
                let who = rng.below(self.subscribers.len() as u64) as usize;
                let to = rng.below(self.demos.len() as u64) as usize;
                let port = self.demos[to].port;
                let subscriber = &mut self.subscribers[who];
                subscriber.cut(port).await?;
                let what = format!("cut {} mid-stream; resumes on demo-{to}", subscriber.name);
                self.note("client cut", what);
                Ok(())
            }
            _ => {
                let index = rng.below(self.demos.len() as u64) as usize;
                let port = self.demos[index].port;
                let answer = self
                    .http
                    .post(format!("http://127.0.0.1:{port}/admin/disconnect-all"))
                    .send()
                    .await
                    .map_err(|e| format!("disconnect-all on demo-{index}: {e}"))?;
                let text = answer.text().await.unwrap_or_default();
                self.note(
                    "disconnect-all",
                    format!("disconnect-all on demo-{index}: {text}"),
                );
                Ok(())
            }
        }
    }

    fn broker(&mut self, broker: Broker) -> &mut Process {
        match broker {
            Broker::Redis => &mut self.redis,
            Broker::Nats => &mut self.nats,
        }
    }

    /// Kills a broker for `length`, then restarts it.
    async fn outage(&mut self, broker: Broker, length: Duration) -> Result<(), String> {
        self.broker(broker).kill();
        tokio::time::sleep(length).await;
        self.broker(broker).start().await?;
        let name = self.broker(broker).name.clone();
        self.note(
            "broker killed",
            format!("kill {name} for {length:.1?}, restarted"),
        );
        Ok(())
    }

    /// Freezes a broker (SIGSTOP) for `length`, then thaws it.
    async fn freeze(&mut self, broker: Broker, length: Duration) -> Result<(), String> {
        self.broker(broker).pause()?;
        tokio::time::sleep(length).await;
        self.broker(broker).resume()?;
        self.broker(broker).wait_ready().await?;
        let name = self.broker(broker).name.clone();
        self.note(
            "broker paused",
            format!("pause {name} (SIGSTOP) for {length:.1?}"),
        );
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Broker {
    Redis,
    Nats,
}
