//! Human-friendly durations and byte sizes for flags and the config file:
//! `5` or `5s`, `250ms`, `2m`; `1048576`, `64KiB`, `1MiB`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as plain seconds (`5`, `0.5`) or with a unit (`250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

/// The longest duration accepted anywhere.
const MAX_SECS: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl FromStr for Secs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let d = s
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .or_else(|| humantime::parse_duration(s).ok())
            .ok_or_else(|| {
                format!("invalid duration '{s}' (expected seconds like 5 or 1.5, or 250ms, 2m)")
            })?;
        // Deadlines are computed as now + duration; a century is "never"
        // for any practical purpose and cannot overflow.
        if d > MAX_SECS {
            return Err(format!("duration '{s}' is too long (at most 100 years)"));
        }
        Ok(Secs(d))
    }
}

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for Secs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Float(f64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Float(f) => f.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A byte count of at least 1, written plainly or with a K/M/G (1000s) or
/// KiB/MiB/GiB (1024s) suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            _ => {
                return Err(format!(
                    "invalid size '{s}' (expected bytes like 65536, 64KiB or 1MiB)"
                ));
            }
        };
        num.parse::<usize>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .filter(|&n| n > 0)
            .map(ByteSize)
            .ok_or_else(|| format!("invalid size '{s}' (expected bytes like 65536, 64KiB or 1MiB)"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string().parse().map_err(serde::de::Error::custom),
            Raw::Text(t) => t.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Parses a count that must be at least 1 (`--max-conns`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{s}' is not a whole number of at least 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!("5".parse::<Secs>().unwrap().0, Duration::from_secs(5));
        assert_eq!("0.5".parse::<Secs>().unwrap().0, Duration::from_millis(500));
        assert_eq!(
            "250ms".parse::<Secs>().unwrap().0,
            Duration::from_millis(250)
        );
        assert!("soon".parse::<Secs>().is_err());
        assert!("-1".parse::<Secs>().is_err());
        assert!("1e30".parse::<Secs>().is_err());
        assert!("1e12".parse::<Secs>().unwrap_err().contains("too long"));
    }

    #[test]
    fn sizes() {
        assert_eq!("1MiB".parse::<ByteSize>().unwrap().0, 1 << 20);
        assert_eq!("64k".parse::<ByteSize>().unwrap().0, 64_000);
        assert_eq!("100".parse::<ByteSize>().unwrap().0, 100);
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("0".parse::<ByteSize>().is_err());
    }
}
