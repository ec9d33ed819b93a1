//! Signed email links: HMAC-SHA256 over the claims, checked in constant time.
//!
//! A token is `base64url(claims JSON) "." base64url(mac)`. The claims name one candidate, one
//! person, one answer, one candidate version and an expiry, so a link works once (the version
//! moves on) and only for the person it was sent to.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use reclaim_workflow::ports::{LinkClaims, LinkError, LinkSigner};
use reclaim_workflow::Timestamp;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 1024;

/// The HMAC link signer; the key comes from config or a secret store.
#[derive(Clone)]
pub struct HmacLinkSigner {
    /// Keyed once at start; cloned per use (cheaper than re-keying).
    mac: HmacSha256,
}

impl std::fmt::Debug for HmacLinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacLinkSigner { key: <redacted> }")
    }
}

impl HmacLinkSigner {
    /// Keys shorter than 32 bytes are refused: they make forgery practical.
    pub fn new(key: impl AsRef<[u8]>) -> Result<Self, String> {
        let key = key.as_ref();
        if key.len() < 32 {
            return Err(format!(
                "the link-signing key must be at least 32 bytes (got {})",
                key.len()
            ));
        }
        let mac = HmacSha256::new_from_slice(key).map_err(|e| e.to_string())?;
        Ok(HmacLinkSigner { mac })
    }

    fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }
}

impl LinkSigner for HmacLinkSigner {
    fn sign(&self, claims: &LinkClaims) -> String {
        let body = serde_json::to_vec(claims).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&body),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    fn verify(&self, token: &str, now: Timestamp) -> Result<LinkClaims, LinkError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(LinkError::Invalid);
        }
        let (body, tag) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| LinkError::Invalid)?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| LinkError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&body);
        mac.verify_slice(&tag).map_err(|_| LinkError::Invalid)?;
        let claims: LinkClaims = serde_json::from_slice(&body).map_err(|_| LinkError::Invalid)?;
        if now >= claims.expires_at {
            return Err(LinkError::Expired(claims.expires_at));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, Utc};
    use reclaim_workflow::ports::LinkAction;

    fn signer() -> HmacLinkSigner {
        HmacLinkSigner::new(vec![7u8; 32]).unwrap()
    }

    fn claims() -> LinkClaims {
        LinkClaims {
            candidate_id: "c-1".into(),
            user_id: "u-1".into(),
            action: LinkAction::Keep,
            version: 3,
            // Whole seconds, fixed per day: two calls give equal claims.
            expires_at: Utc::now()
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc()
                + Duration::days(2),
        }
    }

    #[test]
    fn a_signed_link_verifies_to_its_claims() {
        let t = signer().sign(&claims());
        assert_eq!(signer().verify(&t, Utc::now()).unwrap(), claims());
    }

    #[test]
    fn any_altered_byte_is_refused() {
        let t = signer().sign(&claims());
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(b).unwrap();
            if altered != t {
                assert_eq!(
                    signer().verify(&altered, Utc::now()),
                    Err(LinkError::Invalid)
                );
            }
        }
    }

    #[test]
    fn an_expired_link_is_refused() {
        let t = signer().sign(&claims());
        let later = Utc::now() + Duration::days(3);
        assert!(matches!(
            signer().verify(&t, later),
            Err(LinkError::Expired(_))
        ));
    }

    #[test]
    fn another_key_does_not_verify() {
        let t = signer().sign(&claims());
        let other = HmacLinkSigner::new(vec![8u8; 32]).unwrap();
        assert_eq!(other.verify(&t, Utc::now()), Err(LinkError::Invalid));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(HmacLinkSigner::new(b"short").is_err());
    }
}
