//! The object layout, the same on every sink; how objects are compressed is
//! `encoding.rs`'s.
//!
//! Every key the daemon writes or reads is made here, so the readers (the leaderboard,
//! the study history) ask the layout instead of rebuilding keys from strings.

use super::encoding::{self, Compression};
use super::BodyWriter;
use crate::model::id::HyperId;
use chrono::{DateTime, NaiveDate, Utc};

/// Where the data set object lives.
pub const DATA_PREFIX: &str = "data/";
/// Where the hyper records live, one object per trial.
pub const HYPER_PREFIX: &str = "hyper/";
/// Where the predictions live, one object per trial.
pub const FACT_PREFIX: &str = "fact/";
/// Where trials in flight are announced, one empty object each while it runs.
pub const RUNNING_PREFIX: &str = "running/";
/// Where compacted days of hyper records live, as Parquet.
pub const HYPER_PARQUET_PREFIX: &str = "hyper_parquet/";
/// Where compacted days of predictions live, as Parquet.
pub const FACT_PARQUET_PREFIX: &str = "fact_parquet/";
/// The study's report page, the one object that is rewritten (daily, and by `svr-etl
/// report --publish`).
pub const REPORT_KEY: &str = "report/latest.html";

/// The keys objects are written under, the same on every sink:
/// `data/data.json`, `fact/dt=YYYY-MM-DD/<hyper_id>.json`,
/// `hyper/dt=YYYY-MM-DD/<hyper_id>.json` (`.json.gz` when gzipped). The date is the
/// trial's UTC creation day, the Athena partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    compression: Compression,
}

impl Layout {
    pub fn new(compression: Compression) -> Layout {
        Layout { compression }
    }

    fn ext(&self) -> &'static str {
        match self.compression {
            Compression::None => "json",
            Compression::Gzip => "json.gz",
        }
    }

    pub fn data_key(&self) -> String {
        format!("{DATA_PREFIX}data.{}", self.ext())
    }

    pub fn fact_key(&self, created: DateTime<Utc>, id: HyperId) -> String {
        format!(
            "{FACT_PREFIX}dt={}/{id}.{}",
            created.format("%Y-%m-%d"),
            self.ext()
        )
    }

    /// The fact key of trial `id` created on `day`.
    pub fn fact_key_on(&self, day: NaiveDate, id: HyperId) -> String {
        format!("{}{id}.{}", day_prefix(FACT_PREFIX, day), self.ext())
    }

    pub fn hyper_key(&self, created: DateTime<Utc>, id: HyperId) -> String {
        format!(
            "{HYPER_PREFIX}dt={}/{id}.{}",
            created.format("%Y-%m-%d"),
            self.ext()
        )
    }

    /// Wraps `body` so that what it writes is compressed as configured.
    pub fn encode(&self, body: BodyWriter) -> BodyWriter {
        encoding::encode(self.compression, body)
    }
}

/// The fact object that belongs with the hyper record at `hyper_key`, whichever
/// compression wrote them; `None` when `hyper_key` is not a hyper record's key.
pub fn fact_key_of(hyper_key: &str) -> Option<String> {
    let rest = hyper_key.strip_prefix(HYPER_PREFIX)?;
    Some(format!("{FACT_PREFIX}{rest}"))
}

/// The folder of one UTC day under a table's `prefix`: `<prefix>dt=YYYY-MM-DD/`.
pub fn day_prefix(prefix: &str, day: NaiveDate) -> String {
    format!("{prefix}dt={}/", day.format("%Y-%m-%d"))
}

/// The UTC day a partitioned key (or a day's folder) belongs to.
pub fn day_of(key: &str) -> Option<NaiveDate> {
    let (_, rest) = key.split_once("/dt=")?;
    let day = rest.split('/').next()?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// Part `n` of a compacted day under `prefix` (one of the `*_PARQUET_PREFIX`es):
/// `<prefix>dt=YYYY-MM-DD/part-00000.parquet`. Parts are numbered in the order they
/// were written; a later part holds only trials that earlier ones lack.
pub fn part_key(prefix: &str, day: NaiveDate, n: u32) -> String {
    format!("{}part-{n:05}.parquet", day_prefix(prefix, day))
}

/// The number of a [`part_key`].
pub fn part_number(key: &str) -> Option<u32> {
    let name = key.rsplit('/').next()?;
    name.strip_prefix("part-")?
        .strip_suffix(".parquet")?
        .parse()
        .ok()
}

/// The trial id a hyper or fact key names.
pub fn hyper_id_of(key: &str) -> Option<HyperId> {
    let name = key.rsplit('/').next()?;
    let id = name.split('.').next()?;
    id.parse::<i64>().ok().map(HyperId::from_raw)
}

/// The prefix of the markers of study `study`'s trials in flight.
pub fn running_prefix(study: &str) -> String {
    format!("{RUNNING_PREFIX}{study}/")
}

/// The marker of a trial in flight: its id and parameters are the key itself
/// (`running/<study>/<hyper_id>_<gamma>_<C>_<epsilon>`, each value the hex of its
/// IEEE bits), so that a listing alone tells other hosts what is being tried.
pub fn running_key(study: &str, id: HyperId, params: [f64; 3]) -> String {
    let [g, c, e] = params.map(f64::to_bits);
    format!("{}{id}_{g:016x}_{c:016x}_{e:016x}", running_prefix(study))
}

/// The id and parameters a [`running_key`] holds.
pub fn parse_running_key(key: &str) -> Option<(HyperId, [f64; 3])> {
    let name = key.rsplit('/').next()?;
    let mut parts = name.split('_');
    let id = HyperId::from_raw(parts.next()?.parse().ok()?);
    let mut value =
        || -> Option<f64> { Some(f64::from_bits(u64::from_str_radix(parts.next()?, 16).ok()?)) };
    let params = [value()?, value()?, value()?];
    Some((id, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_partitioned_by_utc_day() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 11, 26, 23, 59, 59).unwrap();
        let id = crate::model::id::HyperIdGenerator::with_node(0).next(t);
        let plain = Layout::new(Compression::None);
        assert_eq!(
            plain.fact_key(t, id),
            format!("fact/dt=2026-11-26/{id}.json")
        );
        assert_eq!(
            plain.hyper_key(t, id),
            format!("hyper/dt=2026-11-26/{id}.json")
        );
        assert_eq!(
            Layout::new(Compression::Gzip).data_key(),
            "data/data.json.gz"
        );
    }

    #[test]
    fn keys_name_their_trial() {
        let id = HyperId::from_raw(123_456_789);
        assert_eq!(
            hyper_id_of("hyper/dt=2026-11-27/123456789.json.gz"),
            Some(id)
        );
        assert_eq!(hyper_id_of("hyper/dt=2026-11-27/x.json"), None);
        let key = running_key("abc", id, [0.1, 1e10, 3.0e-7]);
        assert!(key.starts_with("running/abc/123456789_"), "{key}");
        assert_eq!(parse_running_key(&key), Some((id, [0.1, 1e10, 3.0e-7])));
        assert_eq!(parse_running_key("running/abc/12_zz_1_1"), None);
    }

    #[test]
    fn compacted_parts_are_numbered_within_their_day() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let key = part_key(FACT_PARQUET_PREFIX, day, 3);
        assert_eq!(key, "fact_parquet/dt=2026-11-26/part-00003.parquet");
        assert_eq!(part_number(&key), Some(3));
        assert_eq!(day_of(&key), Some(day));
        assert_eq!(day_of("hyper/dt=2026-11-26/"), Some(day));
        assert_eq!(day_of("hyper/dt=26-11-2026/1.json"), None);
        assert_eq!(part_number("fact_parquet/dt=2026-11-26/x.parquet"), None);
    }

    #[test]
    fn a_hyper_key_names_its_fact_key() {
        assert_eq!(
            fact_key_of("hyper/dt=2026-01-02/7.json.gz").as_deref(),
            Some("fact/dt=2026-01-02/7.json.gz")
        );
        assert_eq!(fact_key_of("fact/dt=2026-01-02/7.json"), None);
    }
}
