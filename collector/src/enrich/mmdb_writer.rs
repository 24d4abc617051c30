//! Writes small MaxMind DB files (format 2.0, IPv4 tree, 32-bit records): a database of one's
//! own networks (offices, VPNs, test ranges) in the GeoIP2 City layout, and the databases the
//! tests load. Values are JSON: objects become maps, strings strings, integers unsigned
//! 32-bit numbers, other numbers doubles.

use std::net::Ipv4Addr;

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("network {0}/{1}: the prefix length must be 1 to 32")]
    Prefix(Ipv4Addr, u8),
    #[error("network {0}/{1} overlaps a network written before it")]
    Overlap(Ipv4Addr, u8),
    #[error("value {0} cannot be stored (use objects, arrays, strings, numbers, booleans)")]
    Value(String),
}

#[derive(Clone, Copy)]
enum Record {
    Empty,
    Node(u32),
    Data(usize),
}

/// Builds the search tree and data section in memory.
pub struct MmdbWriter {
    nodes: Vec<[Record; 2]>,
    data: Vec<u8>,
    database_type: String,
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (low, extra): (u8, Vec<u8>) = if size < 29 {
        (size as u8, vec![])
    } else if size < 29 + 256 {
        (29, vec![(size - 29) as u8])
    } else if size < 285 + 65_536 {
        (30, ((size - 285) as u16).to_be_bytes().to_vec())
    } else {
        (31, ((size - 65_821) as u32).to_be_bytes()[1..].to_vec())
    };
    if kind <= 7 {
        out.push(kind << 5 | low);
    } else {
        out.push(low);
        out.push(kind - 7);
    }
    out.extend(extra);
}

fn encode(v: &Value, out: &mut Vec<u8>) -> Result<(), WriteError> {
    match v {
        Value::String(s) => {
            control(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        Value::Bool(b) => control(out, 14, usize::from(*b)),
        Value::Number(n) => match n.as_u64().and_then(|u| u32::try_from(u).ok()) {
            Some(u) => {
                let bytes = u.to_be_bytes();
                let skip = bytes.iter().take_while(|b| **b == 0).count();
                control(out, 6, 4 - skip);
                out.extend(&bytes[skip..]);
            }
            None => {
                let f = n.as_f64().ok_or_else(|| WriteError::Value(n.to_string()))?;
                control(out, 3, 8);
                out.extend(f.to_be_bytes());
            }
        },
        Value::Object(m) => {
            control(out, 7, m.len());
            for (k, v) in m {
                encode(&Value::String(k.clone()), out)?;
                encode(v, out)?;
            }
        }
        Value::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(v, out)?;
            }
        }
        Value::Null => return Err(WriteError::Value("null".into())),
    }
    Ok(())
}

/// Typed integers the metadata needs (uint16 and uint64 are distinct types in the format).
fn uint(out: &mut Vec<u8>, kind: u8, v: u64, width: usize) {
    control(out, kind, width);
    out.extend(&v.to_be_bytes()[8 - width..]);
}

impl MmdbWriter {
    pub fn new(database_type: &str) -> MmdbWriter {
        MmdbWriter {
            nodes: vec![[Record::Empty, Record::Empty]],
            data: Vec::new(),
            database_type: database_type.to_string(),
        }
    }

    /// Maps `network/prefix` to `value`. Networks must not overlap.
    pub fn insert(
        &mut self,
        network: Ipv4Addr,
        prefix: u8,
        value: &Value,
    ) -> Result<(), WriteError> {
        if !(1..=32).contains(&prefix) {
            return Err(WriteError::Prefix(network, prefix));
        }
        let offset = self.data.len();
        encode(value, &mut self.data)?;
        let bits = u32::from(network);
        let mut node = 0usize;
        for depth in 0..prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            let last = depth + 1 == prefix;
            match (self.nodes[node][bit], last) {
                (Record::Empty, true) => self.nodes[node][bit] = Record::Data(offset),
                (Record::Empty, false) => {
                    self.nodes.push([Record::Empty, Record::Empty]);
                    let next = self.nodes.len() - 1;
                    self.nodes[node][bit] = Record::Node(next as u32);
                    node = next;
                }
                (Record::Node(n), false) => node = n as usize,
                _ => return Err(WriteError::Overlap(network, prefix)),
            }
        }
        Ok(())
    }

    /// The database file's bytes.
    pub fn finish(&self) -> Vec<u8> {
        let node_count = self.nodes.len() as u32;
        let mut out = Vec::new();
        for pair in &self.nodes {
            for r in pair {
                let v = match r {
                    Record::Empty => node_count,
                    Record::Node(n) => *n,
                    Record::Data(off) => node_count + 16 + *off as u32,
                };
                out.extend(v.to_be_bytes());
            }
        }
        out.extend([0u8; 16]);
        out.extend(&self.data);
        out.extend(b"\xAB\xCD\xEFMaxMind.com");
        control(&mut out, 7, 9);
        let key = |out: &mut Vec<u8>, k: &str| {
            control(out, 2, k.len());
            out.extend(k.as_bytes());
        };
        key(&mut out, "binary_format_major_version");
        uint(&mut out, 5, 2, 2);
        key(&mut out, "binary_format_minor_version");
        uint(&mut out, 5, 0, 0);
        key(&mut out, "build_epoch");
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        uint(&mut out, 9, epoch, 8);
        key(&mut out, "database_type");
        control(&mut out, 2, self.database_type.len());
        out.extend(self.database_type.as_bytes());
        key(&mut out, "description");
        control(&mut out, 7, 1);
        key(&mut out, "en");
        key(&mut out, "written by Eddy");
        key(&mut out, "ip_version");
        uint(&mut out, 5, 4, 2);
        key(&mut out, "languages");
        control(&mut out, 11, 1);
        key(&mut out, "en");
        key(&mut out, "node_count");
        uint(&mut out, 6, u64::from(node_count), 4);
        key(&mut out, "record_size");
        uint(&mut out, 5, 32, 2);
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::enrich::geo::GeoDb;

    #[test]
    fn a_written_database_answers_lookups() {
        let mut w = MmdbWriter::new("GeoIP2-City");
        w.insert(
            "81.2.69.0".parse().unwrap(),
            24,
            &json!({"country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
                    "continent": {"code": "EU"},
                    "city": {"names": {"en": "London"}},
                    "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
                    "location": {"latitude": 51.5142, "longitude": -0.0931, "time_zone": "Europe/London"},
                    "postal": {"code": "EC2V"}}),
        )
        .unwrap();
        w.insert(
            "10.0.0.0".parse().unwrap(),
            8,
            &json!({"country": {"iso_code": "ZZ"}}),
        )
        .unwrap();
        assert!(matches!(
            w.insert("10.1.0.0".parse().unwrap(), 16, &json!({})),
            Err(WriteError::Overlap(..))
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.mmdb");
        std::fs::write(&path, w.finish()).unwrap();
        let db = GeoDb::open(&path).unwrap();
        let london = db.lookup("81.2.69.160".parse().unwrap()).unwrap();
        assert_eq!(london.country_code.as_deref(), Some("GB"));
        assert_eq!(london.country_name.as_deref(), Some("United Kingdom"));
        assert_eq!(london.city_name.as_deref(), Some("London"));
        assert_eq!(london.subdivision_code.as_deref(), Some("ENG"));
        assert_eq!(london.continent_code.as_deref(), Some("EU"));
        assert_eq!(london.latitude, Some(51.5142));
        assert_eq!(london.time_zone.as_deref(), Some("Europe/London"));
        assert_eq!(london.postal_code.as_deref(), Some("EC2V"));
        let private = db.lookup("10.200.1.1".parse().unwrap()).unwrap();
        assert_eq!(private.country_code.as_deref(), Some("ZZ"));
        assert_eq!(db.lookup("8.8.8.8".parse().unwrap()), None);
        assert_eq!(db.lookup("::1".parse().unwrap()), None);
    }

    #[test]
    fn long_strings_use_the_extended_size_forms() {
        for len in [28usize, 29, 284, 285, 70_000] {
            let mut out = Vec::new();
            encode(&Value::String("a".repeat(len)), &mut out).unwrap();
            let header = out.len() - len;
            assert_eq!(
                header,
                match len {
                    0..=28 => 1,
                    29..=284 => 2,
                    285..=65_820 => 3,
                    _ => 4,
                }
            );
        }
    }
}
