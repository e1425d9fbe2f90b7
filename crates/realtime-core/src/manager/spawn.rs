//! Where the manager's background tasks run.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// The runtime the manager's background tasks (bus readers, repairs, re-broadcasts, linger
/// timers) are spawned on: one given at build time ([`ManagerBuilder::runtime`]), or else
/// the runtime of the task that starts each of them.
///
/// [`ManagerBuilder::runtime`]: super::ManagerBuilder::runtime
#[derive(Debug, Clone, Default)]
pub(crate) struct Spawner(Option<Handle>);

impl Spawner {
    pub(crate) fn on(runtime: Option<Handle>) -> Self {
        Spawner(runtime)
    }

    /// Spawns `task`; `None` when there is no runtime to run it (none given, and the caller
    /// is not inside one).
    pub(crate) fn spawn<F>(&self, task: F) -> Option<JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(runtime) => Some(runtime.spawn(task)),
            None => Some(Handle::try_current().ok()?.spawn(task)),
        }
    }
}
