//! Divolte's identifiers: `0:<creation time in ms, base 36>:<random part>` for parties and
//! sessions. Page-view ids are `0:<random>` and event ids the page-view id plus a counter; those
//! are opaque strings here.

use rand::RngCore;

use super::query::{parse_base36, to_base36};

/// A party or session id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    pub value: String,
    /// When the id was made, in ms since the epoch, by the clock of whoever made it.
    pub created: i64,
}

impl Identifier {
    /// Parses `0:<base36 ms>:<id>`; exactly three parts, version 0.
    pub fn parse(s: &str) -> Option<Identifier> {
        let mut parts = s.splitn(3, ':');
        let (version, created, id) = (parts.next()?, parts.next()?, parts.next()?);
        if version != "0" || id.contains(':') {
            return None;
        }
        Some(Identifier {
            value: s.to_string(),
            created: parse_base36(created)?,
        })
    }

    /// A new id created at `now_ms`: 24 random bytes, URL-safe base64 (as Divolte's server
    /// generates them).
    pub fn generate(now_ms: i64) -> Identifier {
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        Identifier::with_random_part(now_ms, &base64url(&bytes))
    }

    pub fn with_random_part(created: i64, random: &str) -> Identifier {
        Identifier {
            value: format!("0:{}:{random}", to_base36(created)),
            created,
        }
    }
}

/// URL-safe base64 without padding.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_divolte_ids() {
        let id = Identifier::parse("0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg").unwrap();
        assert_eq!(id.created, parse_base36("is8tiwk4").unwrap());
        for bad in [
            "",
            "0",
            "0:abc",
            "1:is8tiwk4:x",
            "0:not-b36:x",
            "0:is8tiwk4:x:y",
        ] {
            assert_eq!(Identifier::parse(bad), None, "{bad:?}");
        }
        assert!(
            Identifier::parse("0:1:").is_some(),
            "the random part may be empty"
        );
    }

    #[test]
    fn generated_ids_parse_back() {
        let id = Identifier::generate(1_700_000_000_000);
        let back = Identifier::parse(&id.value).unwrap();
        assert_eq!(back.created, 1_700_000_000_000);
        assert_eq!(id.value.rsplit(':').next().unwrap().len(), 32);
        assert_ne!(Identifier::generate(1).value, Identifier::generate(1).value);
    }

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
