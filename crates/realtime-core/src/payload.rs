//! What a payload must be to be published as its [`DataFormat`].

use crate::error::Error;
use crate::event::DataFormat;

/// How deep JSON data may nest: a client's parser (serde_json's default is 128, with the
/// message around it) must be able to read the message it arrives in.
const MAX_JSON_DEPTH: usize = 64;

impl DataFormat {
    /// Whether `data` is what this format says: [`Error::InvalidRequest`] on `data` if not.
    pub(crate) fn check(self, data: &[u8]) -> Result<(), Error> {
        if !matches!(self, DataFormat::Text | DataFormat::Json) {
            return Ok(());
        }
        let text = std::str::from_utf8(data)
            .map_err(|_| Error::invalid("data", format!("{} data must be UTF-8", self.as_str())))?;
        if self == DataFormat::Text {
            return Ok(());
        }
        // serde_json skips a value without its depth limit: the depth is checked apart.
        serde_json::from_str::<serde::de::IgnoredAny>(text)
            .map_err(|e| Error::invalid("data", format!("is not one JSON value: {e}")))?;
        if json_depth(text.as_bytes()) > MAX_JSON_DEPTH {
            return Err(Error::invalid(
                "data",
                format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
            ));
        }
        Ok(())
    }
}

/// The deepest nesting of arrays and objects in valid JSON.
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn json_data_is_checked_for_utf8_validity_and_depth() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(
            DataFormat::Json
                .check(deep(MAX_JSON_DEPTH).as_bytes())
                .is_ok()
        );
        assert!(
            DataFormat::Json
                .check(deep(MAX_JSON_DEPTH + 1).as_bytes())
                .is_err()
        );
        // Brackets and escaped quotes inside strings do not count.
        let quoted = format!("{{\"a\":\"\\\"{}\"}}", "[{".repeat(100));
        assert!(
            DataFormat::Json.check(quoted.as_bytes()).is_ok(),
            "{quoted}"
        );
        // Not UTF-8 inside a string (serde_json skips it unchecked).
        assert!(DataFormat::Json.check(b"\"\xff\"").is_err());
        assert!(DataFormat::Json.check(b"{\"a\":1").is_err());
        assert!(DataFormat::Text.check(b"\xff").is_err());
        assert!(DataFormat::Binary.check(b"\xff").is_ok());
    }
}
