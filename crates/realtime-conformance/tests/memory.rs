//! The whole conformance suite against the in-memory store and bus.

realtime_conformance::conformance_tests!(
    realtime_conformance::memory::MemoryBackend::new().expect("memory backend")
);
