//! Names of the counters and gauges recorded through the `metrics` facade.
//!
//! Install any `metrics` recorder (e.g. a Prometheus exporter) to collect them; without one
//! they cost next to nothing.

/// Gauge: clients currently connected to this instance.
pub const CONNECTIONS: &str = "realtime_connections";
/// Counter: events published through this instance.
pub const PUBLISHED: &str = "realtime_published_total";
/// Counter: events queued to local clients (one per client per event).
pub const DELIVERED: &str = "realtime_delivered_total";
/// Counter: events dropped for a full client queue (drop-on-backpressure mode).
pub const DROPPED: &str = "realtime_dropped_total";
/// Counter: clients closed because their queue was full.
pub const SLOW_CONSUMERS: &str = "realtime_slow_consumers_total";
/// Counter, label `reason`: gap signals (on resume and live).
pub const GAPS: &str = "realtime_gaps_total";
/// Counter: live repairs started (an offset hole or a bus interruption).
pub const REPAIRS: &str = "realtime_repairs_total";
/// Counter: bus messages ignored because the event was already delivered (own echo,
/// broker redelivery).
pub const BUS_DUPLICATES: &str = "realtime_bus_duplicates_total";
/// Counter: subscriptions refused at the connection limit.
pub const REJECTED: &str = "realtime_rejected_connections_total";
/// Counter, label `transport` (`sse`, `ws`): connections closed because a write to the client
/// did not finish within the adapter's write timeout (a client that stopped reading).
pub const WRITE_TIMEOUTS: &str = "realtime_write_timeouts_total";
/// Gauge, label `backend`: 1 while the bus's receiving connection is up, 0 while it is down
/// and being retried.
pub const BUS_CONNECTED: &str = "realtime_bus_connected";
/// Counter, label `backend`: times the bus's receiving connection came back after being down
/// (each followed by a repair of every channel from the store).
pub const BUS_RECONNECTS: &str = "realtime_bus_reconnects_total";
/// Counter, label `outcome` (`sent`, `gave_up`, `skipped`, `closed`): stored events the bus
/// refused at publish, handed to it again in the background.
pub const REBROADCASTS: &str = "realtime_rebroadcasts_total";
/// Counter: times a live repair waited for clients with full queues to read before handing
/// them more of the missed events.
pub const REPAIR_WAITS: &str = "realtime_repair_waits_total";
/// Counter: events of other instances recorded again in this instance's store
/// ([`History::PerInstance`](crate::History::PerInstance) mode).
pub const RERECORDED: &str = "realtime_rerecorded_total";
/// Gauge: channels whose bus subscription is kept after their last local client left
/// ([`ManagerConfig::history_linger`](crate::ManagerConfig::history_linger)).
pub const LINGERING: &str = "realtime_lingering_channels";
/// Counter: lingering channels released early because another channel took their slot
/// ([`ManagerConfig::max_lingering_channels`](crate::ManagerConfig::max_lingering_channels)).
pub const LINGER_EVICTIONS: &str = "realtime_linger_evictions_total";
/// Counter, label `backend`: bus frames that could not be read (another format version, or
/// damaged); each turns into an interruption of its channel's subscriptions.
pub const BUS_DECODE_ERRORS: &str = "realtime_bus_decode_errors_total";
/// Counter, label `outcome` (`read`, `clients_closed`): catch-ups of control requests after
/// the bus was interrupted — read back from the store, or, where they could not be, the
/// clients that might have been named closed instead.
pub const CONTROL_CATCH_UPS: &str = "realtime_control_catch_ups_total";
