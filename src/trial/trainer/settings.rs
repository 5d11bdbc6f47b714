//! `[solver]`: which engine fits and the bounds on a fit's time and memory.

use serde::{Deserialize, Serialize};

use crate::model::values::{Bounded, Positive, Seconds};

/// Which solver fits (`solver.engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Exact,
    LinfaSvm,
}

impl Engine {
    /// The name the config file uses.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Exact => "exact",
            Engine::LinfaSvm => "linfa-svm",
        }
    }
}

/// `[solver]`: how the SMO solver runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverSettings {
    pub engine: Engine,
    /// Stopping tolerance (libsvm's and linfa's `eps`).
    pub tolerance: Positive,
    /// A fit still running after this long ends as a failed trial (exact engine).
    pub max_fit_secs: Seconds<false>,
    /// Largest training set accepted, a bound on a fit's time.
    pub max_train_rows: Bounded<2, { u32::MAX as u64 }>,
    /// Memory one fit's kernel may take, in MiB.
    pub max_fit_mib: Bounded<1, { 1 << 30 }>,
}

impl SolverSettings {
    /// The memory a fit on `n_train` training rows needs at least: linfa-svm keeps a
    /// dense n_train^2 kernel of f64. The exact engine fits any size: within the budget
    /// it keeps every kernel row (2n f32 each), past it two rows at the least.
    pub fn fit_bytes(&self, n_train: usize) -> u128 {
        let n = n_train as u128;
        match self.engine {
            Engine::LinfaSvm => n * n * 8,
            Engine::Exact => 2 * 8 * n,
        }
    }

    pub(super) fn budget_bytes(&self) -> u128 {
        self.max_fit_mib.get() as u128 * (1 << 20)
    }
}
