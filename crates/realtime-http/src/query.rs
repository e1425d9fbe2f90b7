//! The query string, with one rule for every endpoint, and the resume position.

use http::HeaderMap;

use crate::error::ApiError;

/// A decoded query string.
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `raw` (`a=1&b=%20`).
    pub fn parse(raw: &str) -> Self {
        Query(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The parameter's value: absent or empty is `None`; given more than once is 400
    /// `invalid_request` (a client must not be able to smuggle a second value past a check
    /// that read the first).
    pub fn single(&self, name: &str) -> Result<Option<String>, ApiError> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(ApiError::bad_request(
                "invalid_request",
                format!("the {name:?} query parameter is given more than once"),
            ));
        }
        Ok(first.filter(|v| !v.is_empty()).map(str::to_owned))
    }

    /// Every value of a parameter that may repeat (`topics=a&topics=b`), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How many of the newest events a new subscriber asks for before live ones (the query
/// parameter `param`, a whole number): `None` when absent (the manager's default applies);
/// anything else than digits is 400 `invalid_backlog`. The manager refuses more than its
/// replay limit.
pub(crate) fn backlog(query: &Query, param: &str) -> Result<Option<usize>, ApiError> {
    let Some(raw) = query.single(param)? else {
        return Ok(None);
    };
    raw.parse().map(Some).map_err(|_| {
        ApiError::bad_request(
            "invalid_backlog",
            format!("the {param:?} query parameter is a count of events, not {raw:?}"),
        )
    })
}

/// Where a stream resumes: the `Last-Event-ID` header when sent (a browser's `EventSource`
/// sends it on reconnect), else the query parameter `param`. An empty id (either) means none,
/// as `EventSource` sends none after `id:` was cleared; a header that is not text is kept as a
/// token no position parses from, so the manager answers it with a gap.
pub fn resume_position(
    headers: &HeaderMap,
    query: &Query,
    param: &str,
) -> Result<Option<String>, ApiError> {
    match headers.get("last-event-id") {
        Some(value) if value.is_empty() => Ok(None),
        Some(value) => Ok(Some(value.to_str().unwrap_or("\u{fffd}").to_owned())),
        None => query.single(param),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_wins_and_empty_means_none() {
        let query = Query::parse("last_event_id=q-1");
        let mut headers = HeaderMap::new();
        assert_eq!(
            resume_position(&headers, &query, "last_event_id").unwrap(),
            Some("q-1".into())
        );
        headers.insert("last-event-id", "h-2".parse().unwrap());
        assert_eq!(
            resume_position(&headers, &query, "last_event_id").unwrap(),
            Some("h-2".into())
        );
        headers.insert("last-event-id", "".parse().unwrap());
        assert_eq!(
            resume_position(&headers, &query, "last_event_id").unwrap(),
            None
        );
        assert_eq!(
            backlog(&Query::parse("backlog=20"), "backlog").unwrap(),
            Some(20)
        );
        assert_eq!(backlog(&Query::parse(""), "backlog").unwrap(), None);
        assert!(backlog(&Query::parse("backlog=-1"), "backlog").is_err());
        let repeated = Query::parse("last_event_id=a&last_event_id=b");
        assert!(resume_position(&HeaderMap::new(), &repeated, "last_event_id").is_err());
        assert_eq!(
            Query::parse("topics=a&x=1&topics=b")
                .all("topics")
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }
}
