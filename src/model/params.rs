//! A trial's hyperparameters: the search space they come from, the log-uniform draw,
//! the seeds draws are made from, and which sampler chooses them.
//!
//! Every trial is drawn from its own seed, recorded with the trial, so any trial can be
//! replayed exactly. With a master seed configured the sequence of trial seeds is
//! reproducible too. ChaCha is used because, unlike `StdRng`, its stream is stable
//! across releases of `rand`.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

/// A range of log10 exponents: values are drawn as `10^u`, `u` uniform in `[min, max)`.
/// In the config file, `[min, max]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct LogRange {
    min: f64,
    max: f64,
}

/// Exponents beyond this make `10^u` overflow or underflow to a useless value.
const MAX_EXPONENT: f64 = 300.0;

impl TryFrom<[f64; 2]> for LogRange {
    type Error = String;
    fn try_from([min, max]: [f64; 2]) -> Result<Self, String> {
        LogRange::new(min, max)
    }
}

impl From<LogRange> for [f64; 2] {
    fn from(r: LogRange) -> [f64; 2] {
        [r.min, r.max]
    }
}

/// A [`LogRange`] within `[MIN, MAX]`: how far a config key's range may reach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "[f64; 2]", into = "[f64; 2]")]
pub struct Within<const MIN: i32, const MAX: i32>(LogRange);

impl<const MIN: i32, const MAX: i32> Within<MIN, MAX> {
    pub fn get(self) -> LogRange {
        self.0
    }
}

impl<const MIN: i32, const MAX: i32> TryFrom<[f64; 2]> for Within<MIN, MAX> {
    type Error = String;
    fn try_from(bounds: [f64; 2]) -> Result<Self, String> {
        let range = LogRange::try_from(bounds)?;
        if range.min < MIN as f64 || range.max > MAX as f64 {
            return Err(format!(
                "log10 exponents must lie within [{MIN}, {MAX}], got [{}, {}] (wider ranges allow fits that run for minutes; see the config file)",
                range.min, range.max
            ));
        }
        Ok(Within(range))
    }
}

impl<const MIN: i32, const MAX: i32> From<Within<MIN, MAX>> for [f64; 2] {
    fn from(w: Within<MIN, MAX>) -> [f64; 2] {
        w.0.into()
    }
}

impl LogRange {
    pub fn new(min: f64, max: f64) -> Result<LogRange, String> {
        if !(min.is_finite() && max.is_finite()) {
            return Err(format!("bounds must be finite numbers, got [{min}, {max}]"));
        }
        if min >= max {
            return Err(format!("min {min} must be below max {max}"));
        }
        if min < -MAX_EXPONENT || max > MAX_EXPONENT {
            return Err(format!(
                "log10 exponents must lie within [-{MAX_EXPONENT}, {MAX_EXPONENT}], got [{min}, {max}]"
            ));
        }
        Ok(LogRange { min, max })
    }

    pub fn min(&self) -> f64 {
        self.min
    }

    pub fn max(&self) -> f64 {
        self.max
    }

    /// Whether `value` could have been drawn from this range.
    pub fn contains(&self, value: f64) -> bool {
        let u = value.log10();
        // log10 of a drawn value can land a rounding error outside the exponent range.
        u >= self.min - 1e-12 && u <= self.max + 1e-12
    }

    fn draw(&self, rng: &mut impl Rng) -> f64 {
        10f64.powf(rng.gen_range(self.min..self.max))
    }
}

/// Where gamma, C and epsilon are drawn from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchSpace {
    pub gamma: LogRange,
    pub c: LogRange,
    pub epsilon: LogRange,
}

/// One SVR configuration: all three values finite and positive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrialParams {
    gamma: f64,
    c: f64,
    epsilon: f64,
}

impl TrialParams {
    /// Checks a configuration given by hand; errors name the parameter.
    pub fn new(gamma: f64, c: f64, epsilon: f64) -> Result<TrialParams, String> {
        for (name, v) in [("gamma", gamma), ("C", c), ("epsilon", epsilon)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("{name} must be a finite number above 0, got {v}"));
            }
        }
        Ok(TrialParams { gamma, c, epsilon })
    }

    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    pub fn c(&self) -> f64 {
        self.c
    }

    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }
}

impl SearchSpace {
    /// Draws one configuration from `seed`: the same seed always gives the same values.
    pub fn draw(&self, seed: u64) -> TrialParams {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        TrialParams {
            gamma: self.gamma.draw(&mut rng),
            c: self.c.draw(&mut rng),
            epsilon: self.epsilon.draw(&mut rng),
        }
    }

    pub fn contains(&self, p: &TrialParams) -> bool {
        self.gamma.contains(p.gamma) && self.c.contains(p.c) && self.epsilon.contains(p.epsilon)
    }
}

/// Hands out the per-trial seeds.
#[derive(Debug)]
pub struct SeedSource {
    rng: ChaCha20Rng,
}

impl SeedSource {
    /// Reproducible from `master`, or from the operating system's entropy when `None`.
    pub fn new(master: Option<u64>) -> SeedSource {
        let rng = match master {
            Some(s) => ChaCha20Rng::seed_from_u64(s),
            None => ChaCha20Rng::from_entropy(),
        };
        SeedSource { rng }
    }

    /// The next trial seed. Kept below 2^53 so it survives a trip through any JSON reader.
    pub fn next_seed(&mut self) -> u64 {
        self.rng.next_u64() >> 11
    }
}

/// `search.sampler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SamplerKind {
    /// Log-uniform draws, each from its own seed.
    Random,
    /// The tree-structured Parzen estimator over the study's history.
    Tpe,
}

impl SamplerKind {
    /// The name the config file uses.
    pub fn name(self) -> &'static str {
        match self {
            SamplerKind::Random => "random",
            SamplerKind::Tpe => "tpe",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_space() -> SearchSpace {
        SearchSpace {
            gamma: LogRange::new(-2.0, 2.0).unwrap(),
            c: LogRange::new(-2.0, 2.0).unwrap(),
            epsilon: LogRange::new(-2.0, 0.0).unwrap(),
        }
    }

    #[test]
    fn same_seed_same_draw() {
        let s = default_space();
        assert_eq!(s.draw(42), s.draw(42));
        assert_ne!(s.draw(42), s.draw(43));
    }

    #[test]
    fn master_seed_fixes_the_sequence() {
        let mut a = SeedSource::new(Some(1));
        let mut b = SeedSource::new(Some(1));
        let sa: Vec<u64> = (0..5).map(|_| a.next_seed()).collect();
        let sb: Vec<u64> = (0..5).map(|_| b.next_seed()).collect();
        assert_eq!(sa, sb);
        assert!(sa.iter().all(|s| *s < 1 << 53));
    }

    #[test]
    fn draws_are_log_uniform_within_range() {
        let s = default_space();
        let n = 20_000;
        let mut below_one = 0;
        for seed in 0..n {
            let p = s.draw(seed);
            assert!(s.contains(&p), "{p:?}");
            assert!((0.01..100.0).contains(&p.gamma()));
            assert!((0.01..1.0).contains(&p.epsilon()));
            if p.c() < 1.0 {
                below_one += 1;
            }
        }
        // Log-uniform over 10^[-2, 2): half the mass lies below 1.
        let frac = below_one as f64 / n as f64;
        assert!((frac - 0.5).abs() < 0.02, "{frac}");
    }

    #[test]
    fn bad_ranges_and_params_are_rejected() {
        assert!(LogRange::new(1.0, 1.0).is_err());
        assert!(LogRange::new(2.0, 1.0).is_err());
        assert!(LogRange::new(f64::NAN, 1.0).is_err());
        assert!(LogRange::new(-400.0, 1.0).is_err());
        assert!(TrialParams::new(1.0, 1.0, 0.0).is_err());
        assert!(TrialParams::new(f64::INFINITY, 1.0, 0.1).is_err());
        assert!(TrialParams::new(1.0, -1.0, 0.1).is_err());
    }
}
