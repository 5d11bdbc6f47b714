//! Checked leaf values of the config file, typed at the serde boundary.
//!
//! Each type deserializes only from the TOML type it stands for (an integer key
//! refuses `true` and `3.5`) and only into a usable value, so settings that
//! deserialized are valid. Each serializes back to the form it was read from, which is
//! what makes `check-config`'s output load again.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A finite number above zero.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Positive(f64);

impl Positive {
    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Positive {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if v.is_finite() && v > 0.0 {
            Ok(Positive(v))
        } else {
            Err(format!("must be a finite number above 0, got {v}"))
        }
    }
}

impl From<Positive> for f64 {
    fn from(v: Positive) -> f64 {
        v.0
    }
}

/// A whole number in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub fn get(self) -> usize {
        self.0 as usize
    }
}

impl<const MIN: u64, const MAX: u64> TryFrom<u64> for Bounded<MIN, MAX> {
    type Error = String;
    fn try_from(v: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&v) {
            Ok(Bounded(v))
        } else {
            Err(format!("must be {MIN} to {MAX}, got {v}"))
        }
    }
}

impl<const MIN: u64, const MAX: u64> From<Bounded<MIN, MAX>> for u64 {
    fn from(v: Bounded<MIN, MAX>) -> u64 {
        v.0
    }
}

/// A number of seconds, at most a day; zero only where `ZERO_OK`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds<const ZERO_OK: bool>(Duration);

impl<const ZERO_OK: bool> Seconds<ZERO_OK> {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl<const ZERO_OK: bool> TryFrom<f64> for Seconds<ZERO_OK> {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        let ok = v.is_finite() && v <= 86_400.0 && (v > 0.0 || (ZERO_OK && v == 0.0));
        if ok {
            Ok(Seconds(Duration::from_secs_f64(v)))
        } else {
            let low = if ZERO_OK { "[0" } else { "(0" };
            Err(format!(
                "must be a number of seconds in {low}, 86400], got {v}"
            ))
        }
    }
}

impl<const ZERO_OK: bool> From<Seconds<ZERO_OK>> for f64 {
    fn from(v: Seconds<ZERO_OK>) -> f64 {
        v.0.as_secs_f64()
    }
}

/// A string where empty means "not set".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct Optional(Option<String>);

impl Optional {
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl From<String> for Optional {
    fn from(s: String) -> Optional {
        let s = s.trim();
        Optional((!s.is_empty()).then(|| s.to_string()))
    }
}

impl From<Optional> for String {
    fn from(v: Optional) -> String {
        v.0.unwrap_or_default()
    }
}

/// A tracing filter in which every directive names a level: `info`, `svr_etl=debug`.
///
/// tracing's own parser reads a bare word it does not know (`warning`, `verbose`) as
/// a target with no level, which silences everything else; that is refused here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogLevel(String);

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

impl LogLevel {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LogLevel {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim().to_string();
        if s.is_empty() {
            return Err(format!(
                "expected one of {LEVELS:?} or target=level directives"
            ));
        }
        for directive in s.split(',') {
            let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
            if !LEVELS.contains(&level.trim().to_ascii_lowercase().as_str()) {
                return Err(format!(
                    "{directive:?} names no level; expected one of {LEVELS:?}, optionally as target=level"
                ));
            }
        }
        tracing_subscriber::EnvFilter::try_new(&s).map_err(|e| format!("{e}: {s:?}"))?;
        Ok(LogLevel(s))
    }
}

impl From<LogLevel> for String {
    fn from(v: LogLevel) -> String {
        v.0
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Glue database name: lower-case letters, digits and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatabaseName(String);

impl DatabaseName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DatabaseName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim().to_string();
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if ok {
            Ok(DatabaseName(s))
        } else {
            Err(format!(
                "must be lower-case letters, digits or `_`, got {s:?}"
            ))
        }
    }
}

impl From<DatabaseName> for String {
    fn from(v: DatabaseName) -> String {
        v.0
    }
}

/// Where an optional server listens: `""` for off, else `HOST:PORT` with an IP address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr(Option<std::net::SocketAddr>);

impl ListenAddr {
    pub fn get(self) -> Option<std::net::SocketAddr> {
        self.0
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(ListenAddr(None));
        }
        s.parse().map(|a| ListenAddr(Some(a))).map_err(|_| {
            format!("must be \"\" (off) or an IP address and port such as \"127.0.0.1:9464\", got {s:?}")
        })
    }
}

impl From<ListenAddr> for String {
    fn from(v: ListenAddr) -> String {
        v.0.map(|a| a.to_string()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_levels_must_name_a_level() {
        for good in ["info", "WARN", "svr_etl=debug,info", "off"] {
            assert!(LogLevel::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in [
            "warning",
            "information",
            "verbose",
            "true",
            "12345",
            "",
            "a=loud",
        ] {
            assert!(LogLevel::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_addresses_are_off_or_an_ip_and_port() {
        assert_eq!(ListenAddr::try_from(String::new()).unwrap().get(), None);
        let on = ListenAddr::try_from("127.0.0.1:9464".to_string()).unwrap();
        assert_eq!(String::from(on), "127.0.0.1:9464");
        assert!(ListenAddr::try_from("[::1]:9464".to_string()).is_ok());
        for bad in ["localhost:9464", "9464", "127.0.0.1", "127.0.0.1:99999"] {
            assert!(ListenAddr::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_and_bounds() {
        assert!(Seconds::<true>::try_from(0.0).is_ok());
        assert!(Seconds::<false>::try_from(0.0).is_err());
        assert!(Seconds::<false>::try_from(f64::NAN).is_err());
        assert!(Bounded::<1, 4>::try_from(5).is_err());
        assert_eq!(Bounded::<1, 4>::try_from(4).unwrap().get(), 4);
        assert!(Positive::try_from(-1e-3).is_err());
    }
}
