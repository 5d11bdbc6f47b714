//! The truncated normal distribution the Parzen estimators are built of: its log
//! density and draws from it, on the standardized bounds `a = (low - mu) / sigma`,
//! `b = (high - mu) / sigma`.

use rand::Rng;
use rand_distr::StandardNormal;

pub const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The standard normal's distribution function.
fn ndtr(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// `ln(Phi(b) - Phi(a))`, computed in the tail where it loses least.
pub fn log_gauss_mass(a: f64, b: f64) -> f64 {
    if b <= 0.0 {
        // Both in the left tail: the smaller side of the difference is accurate.
        (ndtr(b) - ndtr(a)).ln()
    } else if a > 0.0 {
        log_gauss_mass(-b, -a)
    } else {
        // Straddles zero: one minus the two tails, without cancellation near 1.
        (-ndtr(a) - ndtr(-b)).ln_1p()
    }
}

/// The log density at `x` of the normal (`mu`, `sigma`) truncated to `[low, high]`;
/// minus infinity outside. The estimators compute it in two parts (see
/// `ParzenEstimator::log_pdf`); this whole form checks them.
#[cfg(test)]
pub fn log_pdf(x: f64, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    if x < low || x > high {
        return f64::NEG_INFINITY;
    }
    let z = (x - mu) / sigma;
    -0.5 * z * z
        - LN_SQRT_2PI
        - log_gauss_mass((low - mu) / sigma, (high - mu) / sigma)
        - sigma.ln()
}

/// A draw from the normal (`mu`, `sigma`) truncated to `[low, high]`, by rejection:
/// every kernel keeps at least a third of its mass inside the bounds (its centre lies
/// within them), so few draws are rejected.
pub fn sample(rng: &mut impl Rng, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    for _ in 0..1000 {
        let z: f64 = rng.sample(StandardNormal);
        let x = mu + sigma * z;
        if (low..=high).contains(&x) {
            return x;
        }
    }
    // Out of reach with a centre inside the bounds; stay within them regardless.
    mu.clamp(low, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn the_density_integrates_to_one() {
        let (mu, sigma, low, high) = (0.3, 0.4, -1.0, 1.0);
        let steps = 200_000;
        let h = (high - low) / steps as f64;
        let total: f64 = (0..steps)
            .map(|i| log_pdf(low + (i as f64 + 0.5) * h, mu, sigma, low, high).exp() * h)
            .sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert_eq!(log_pdf(1.5, mu, sigma, low, high), f64::NEG_INFINITY);
    }

    #[test]
    fn the_mass_is_accurate_in_every_case() {
        // scipy.stats.norm: cdf(1) - cdf(-2) = 0.8185946141203637
        assert!((log_gauss_mass(-2.0, 1.0).exp() - 0.818_594_614_120_363_7).abs() < 1e-15);
        // cdf(-1) - cdf(-3) = 0.15730535589982697, and its mirror image.
        let left = log_gauss_mass(-3.0, -1.0).exp();
        assert!((left - 0.157_305_355_899_826_97).abs() < 1e-15, "{left}");
        assert_eq!(log_gauss_mass(1.0, 3.0), log_gauss_mass(-3.0, -1.0));
    }

    #[test]
    fn draws_stay_within_bounds_and_follow_the_density() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let (mu, sigma, low, high) = (0.9, 0.5, 0.0, 1.0);
        let draws: Vec<f64> = (0..20_000)
            .map(|_| sample(&mut rng, mu, sigma, low, high))
            .collect();
        assert!(draws.iter().all(|x| (low..=high).contains(x)));
        let above_half = draws.iter().filter(|x| **x > 0.5).count() as f64 / 20_000.0;
        // P(X > 0.5) = (Phi(0.2) - Phi(-0.8)) / (Phi(0.2) - Phi(-1.8)) = 0.6946...
        let expected = ((ndtr(0.2) - ndtr(-0.8)) / (ndtr(0.2) - ndtr(-1.8))).min(1.0);
        assert!(
            (above_half - expected).abs() < 0.015,
            "{above_half} vs {expected}"
        );
    }
}
