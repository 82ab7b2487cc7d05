//! Human-friendly durations, byte sizes and counts for flags and the config
//! file: `5` or `5s`, `250ms`, `2m`; `1048576`, `64KiB`, `1MiB`; `20`. Each
//! parses the same way from either, so both front ends give the same error.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as plain seconds (`5`, `0.5`) or with a unit (`250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl Secs {
    /// A whole number of seconds, for defaults.
    pub const fn from_secs(secs: u64) -> Self {
        Secs(Duration::from_secs(secs))
    }

    /// The duration, with 0 meaning "no limit".
    pub fn nonzero(self) -> Option<Duration> {
        (!self.0.is_zero()).then_some(self.0)
    }
}

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

impl Serialize for Secs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n % (1 << 20) == 0 => write!(f, "{}MiB", n >> 20),
            n if n % (1 << 10) == 0 => write!(f, "{}KiB", n >> 10),
            n => write!(f, "{n}"),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
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

/// A whole number of 0 or more (`--history`, `--max-conns`); a negative or
/// fractional one is refused with the same words from a flag or a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Count(pub usize);

impl FromStr for Count {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.trim()
            .parse::<usize>()
            .map(Count)
            .map_err(|_| format!("must be a whole number of 0 or more, not '{s}'"))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Float(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Int(n) => n.to_string(),
            Raw::Float(f) => f.to_string(),
            Raw::Text(t) => t,
        };
        text.parse().map_err(serde::de::Error::custom)
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
        for n in [1, 100, 1 << 10, 64 << 10, 1 << 20, 3 << 20] {
            let shown = ByteSize(n).to_string();
            assert_eq!(shown.parse::<ByteSize>().unwrap().0, n, "{shown}");
        }
    }

    #[test]
    fn counts() {
        assert_eq!("20".parse::<Count>().unwrap().0, 20);
        assert_eq!(
            "-5".parse::<Count>().unwrap_err(),
            "must be a whole number of 0 or more, not '-5'"
        );
        assert!("1.5".parse::<Count>().is_err());
    }
}
