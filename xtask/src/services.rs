//! Starting the servers a test run needs.
//!
//! Redis, RabbitMQ, NATS and PostgreSQL run before every session and CI run; backends that
//! need a server add a check (and, where the project starts it, the start-up) here.

/// Makes sure every service the test suite uses is reachable.
pub(crate) fn ensure_for_tests() -> Result<(), String> {
    // The in-memory backend needs nothing. Backend crates register their services here.
    Ok(())
}
