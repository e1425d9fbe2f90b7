//! Where a deployment keeps its history: one store shared by every instance, or one store per
//! instance. The choice decides what a resume position means.

use crate::error::{Error, Result};

/// How the instances of a deployment keep channel history.
///
/// Set it with [`ManagerConfig::history`](crate::ManagerConfig::history) or
/// [`ManagerBuilder::history`](crate::ManagerBuilder::history);
/// [`ManagerBuilder::build`](crate::ManagerBuilder::build) refuses a store and bus it cannot
/// honour it with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum History {
    /// Default. Every instance uses the same store (e.g. Redis): positions are the store's,
    /// the same on every instance. A client resumes exactly on any instance, and an event the
    /// bus loses is read back from the store.
    #[default]
    Shared,
    /// Each instance keeps its own history in a store of its own process (the
    /// [`InMemoryStore`](crate::InMemoryStore)); instances share only the bus. An event that
    /// arrives from another instance is recorded again in this instance's store, under this
    /// instance's position, and delivered. Resume semantics:
    /// - on the same instance, from a position it issued: exact, as long as the instance has
    ///   held the channel's bus subscription without a break since (it holds it while the
    ///   channel has local clients, and [`ManagerConfig::history_linger`](crate::ManagerConfig::history_linger)
    ///   after the last one leaves);
    /// - on another instance, or after such a break: an `epoch_changed` gap;
    /// - an event of another instance that the bus lost (a bus interruption, or a hole in that
    ///   instance's sequence not filled within a short wait) cannot be read back from anywhere:
    ///   the channel's local clients get a `lost` gap and its local history starts a new
    ///   epoch, so a later resume from before the loss gets `epoch_changed`, never a replay
    ///   with a silent hole.
    PerInstance,
}

/// Which processes can see a store's data or a bus's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reach {
    /// Only the process that holds the value (the in-memory store and bus). Several managers
    /// of one process may still share it.
    Process,
    /// Every process that connects to the same server (Redis, a broker). The default for a
    /// backend that does not say.
    Network,
}

/// Refuses a store and bus that cannot honour `history`.
pub(crate) fn check(history: History, store: Reach, bus: Reach) -> Result<()> {
    match (history, store, bus) {
        (History::Shared, Reach::Process, Reach::Network) => Err(Error::invalid_config(
            "history",
            "a store that lives in this process cannot be shared by the instances a network \
             bus reaches (their events would be lost without a word): use a shared store \
             such as Redis, or History::PerInstance",
        )),
        (History::PerInstance, Reach::Network, _) => Err(Error::invalid_config(
            "history",
            "History::PerInstance keeps each instance's history in a store of its own process \
             (an InMemoryStore); a store other instances can reach belongs to History::Shared",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_only_the_combinations_that_lose_or_mix_history() {
        use History::*;
        use Reach::*;
        let refused = [(Shared, Process, Network), (PerInstance, Network, Network)];
        for history in [Shared, PerInstance] {
            for store in [Process, Network] {
                for bus in [Process, Network] {
                    let outcome = check(history, store, bus);
                    let expect_refused = refused.contains(&(history, store, bus))
                        || (history == PerInstance && store == Network);
                    assert_eq!(
                        outcome.is_err(),
                        expect_refused,
                        "{history:?} {store:?} {bus:?}"
                    );
                }
            }
        }
    }
}
