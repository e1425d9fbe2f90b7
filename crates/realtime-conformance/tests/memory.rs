//! The whole conformance suite against the in-memory store and bus, in both history modes.

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
