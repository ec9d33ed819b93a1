//! Where an inventory collection is. Each page is a fresh instance, so the cursor is all the
//! connector remembers: which page of detected apps, which app on it, and which page of that
//! app's devices.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The detected-apps page being read (its `@odata.nextLink`); `None` for the first.
    #[serde(default)]
    pub apps: Option<String>,
    /// The app on that page whose devices come next.
    #[serde(default)]
    pub index: usize,
    /// The next page of that app's devices; `None` for its first.
    #[serde(default)]
    pub devices: Option<String>,
}

impl Cursor {
    /// The cursor the host hands back, or the start when it hands none.
    pub fn decode(text: Option<&str>) -> Result<Cursor, String> {
        match text {
            None => Ok(Cursor::default()),
            Some(t) => serde_json::from_str(t).map_err(|e| format!("unreadable cursor: {e}")),
        }
    }

    pub fn encode(&self) -> String {
        // Strings and a number always serialise.
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
            apps: Some("https://csd.example/api/deviceManagement/detectedApps?$skip=50".into()),
            index: 3,
            devices: Some(
                "https://csd.example/api/deviceManagement/detectedApps/a/managedDevices?$skip=10"
                    .into(),
            ),
        };
        assert_eq!(Cursor::decode(Some(&c.encode())).unwrap(), c);
        assert_eq!(Cursor::decode(None).unwrap(), Cursor::default());
        assert!(Cursor::decode(Some("not json")).is_err());
    }
}
