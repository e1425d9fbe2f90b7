//! Topic lists from the `topics` query parameter (the Go package's `ParseTopics` rules).

/// A topic that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicError {
    /// The offending topic (truncated to 64 characters), empty when the list is at fault.
    pub topic: String,
    /// Why.
    pub reason: String,
}

/// Splits `raw` on `,`, `;` and whitespace, drops empty parts and duplicates (keeping the first
/// occurrence's order), and checks each topic with [`check_topic`]; at most `max_count`
/// topics.
pub fn parse_topics(
    raw: &str,
    max_count: usize,
    max_len: usize,
) -> Result<Vec<String>, TopicError> {
    let mut topics: Vec<String> = Vec::new();
    for topic in raw
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|t| !t.is_empty())
    {
        check_topic(topic, max_len)?;
        if !topics.iter().any(|t| t == topic) {
            topics.push(topic.to_owned());
        }
        if topics.len() > max_count {
            return Err(TopicError {
                topic: String::new(),
                reason: format!("more than {max_count} topics"),
            });
        }
    }
    Ok(topics)
}

/// Checks one topic name with the rule every channel name follows, on every transport
/// ([`realtime_core::routing::validate_channel`]): 1 to `max_len` bytes of ASCII letters,
/// digits and `- _ . : / @`.
pub fn check_topic(topic: &str, max_len: usize) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError {
            topic: String::new(),
            reason: "empty topic".into(),
        });
    }
    realtime_core::routing::validate_channel(topic, max_len).map_err(|error| TopicError {
        topic: topic.chars().take(64).collect(),
        reason: match error {
            realtime_core::Error::InvalidChannel { reason, .. } => reason.to_owned(),
            other => other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separators_duplicates_and_order() {
        assert_eq!(
            parse_topics("a,b;c d\te,,a ;", 10, 16).unwrap(),
            vec!["a", "b", "c", "d", "e"]
        );
        assert_eq!(parse_topics("", 10, 16).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn limits_and_characters() {
        assert_eq!(
            parse_topics("a,b,c", 2, 16).unwrap_err().reason,
            "more than 2 topics"
        );
        assert_eq!(
            parse_topics("a,a,a,b", 2, 16).unwrap(),
            vec!["a", "b"],
            "duplicates do not count"
        );
        assert_eq!(
            parse_topics("ok,bad*topic", 5, 16).unwrap_err().topic,
            "bad*topic"
        );
        assert_eq!(
            parse_topics("user:42,team/a@b", 5, 16).unwrap(),
            vec!["user:42", "team/a@b"],
            "every channel name SSE accepts"
        );
        assert_eq!(
            parse_topics("toolongtopic", 5, 4).unwrap_err().topic,
            "toolongtopic"
        );
        assert!(parse_topics("é", 5, 16).is_err());
    }
}
