//! The whole conformance suite against the in-memory store and bus, in both history modes,
//! and with the store and the bus from two backends.

mod shared {
    realtime_conformance::conformance_tests!(
        realtime_conformance::memory::MemoryBackend::new().expect("memory backend")
    );
}

mod per_instance {
    realtime_conformance::conformance_tests!(realtime_conformance::PerInstance::new(
        realtime_conformance::memory::MemoryBackend::new().expect("memory backend")
    ));
}

mod with_store {
    // A store from one backend, the bus from another: what a bus-only backend runs.
    realtime_conformance::conformance_tests!(realtime_conformance::WithStore::new(
        realtime_conformance::memory::MemoryBackend::new().expect("memory store"),
        realtime_conformance::memory::MemoryBackend::new().expect("memory bus"),
    ));
}
