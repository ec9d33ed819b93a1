//! Where a collection is: the connector runs each page in a fresh instance, so the cursor the
//! host stores between pages is all it remembers.

use serde::{Deserialize, Serialize};

/// The collection's position: the Graph `@odata.nextLink` of the users page still to read
/// (`None` before the first page). Encoded as JSON with a phase name, so a later version can add
/// phases and still read cursors stored by this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub phase: Phase,
    #[serde(default)]
    pub next: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Reading users (and their licenses) page by page.
    Users,
}

impl Cursor {
    /// The first page.
    pub fn start() -> Cursor {
        Cursor {
            phase: Phase::Users,
            next: None,
        }
    }

    /// The cursor the host hands back, or the start when it hands none; a cursor this
    /// connector did not write is an error naming why.
    pub fn decode(text: Option<&str>) -> Result<Cursor, String> {
        match text {
            None => Ok(Cursor::start()),
            Some(t) => serde_json::from_str(t).map_err(|e| format!("unreadable cursor: {e}")),
        }
    }

    pub fn encode(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_none_is_the_start() {
        let c = Cursor {
            phase: Phase::Users,
            next: Some("https://graph.microsoft.com/v1.0/users?$skiptoken=X%27y".into()),
        };
        assert_eq!(Cursor::decode(Some(&c.encode())).unwrap(), c);
        assert_eq!(Cursor::decode(None).unwrap(), Cursor::start());
        assert!(c.encode().contains("\"phase\":\"users\""));
    }

    #[test]
    fn a_cursor_from_elsewhere_is_refused() {
        assert!(Cursor::decode(Some("page-2")).is_err());
        assert!(Cursor::decode(Some("{\"phase\":\"groups\"}")).is_err());
    }
}
