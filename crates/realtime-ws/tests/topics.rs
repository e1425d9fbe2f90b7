//! Properties of the `topics` parser over generated lists.

use proptest::prelude::*;
use realtime_ws::{check_topic, parse_topics};

proptest! {
    /// Any input is refused or gives valid, distinct topics within the limits, in the order
    /// of their first appearance; the same list written with other separators parses alike.
    #[test]
    fn parsed_topics_are_valid_distinct_and_ordered(
        topics in proptest::collection::vec("[A-Za-z0-9_.:/@-]{1,12}", 0..12),
        separators in proptest::collection::vec(prop_oneof![Just(","), Just(";"), Just(" "), Just(",\t")], 12),
        max_count in 1usize..10,
    ) {
        let raw: String = topics
            .iter()
            .zip(&separators)
            .map(|(t, s)| format!("{t}{s}"))
            .collect();
        let mut distinct: Vec<&String> = Vec::new();
        for topic in &topics {
            if !distinct.contains(&topic) {
                distinct.push(topic);
            }
        }
        match parse_topics(&raw, max_count, 12) {
            Ok(parsed) => {
                prop_assert!(distinct.len() <= max_count);
                prop_assert_eq!(parsed.iter().collect::<Vec<_>>(), distinct);
                for topic in &parsed {
                    prop_assert!(check_topic(topic, 12).is_ok());
                }
            }
            Err(error) => prop_assert!(distinct.len() > max_count, "{error:?}"),
        }
    }

    /// Garbage never panics and never yields a topic outside the allowed set.
    #[test]
    fn garbage_is_refused_or_clean(raw in "\\PC{0,80}") {
        if let Ok(parsed) = parse_topics(&raw, 32, 128) {
            for topic in parsed {
                prop_assert!(topic.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b)));
            }
        }
    }
}
