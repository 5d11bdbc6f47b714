use super::*;
use crate::model::params::LogRange;
use std::io::Write;

fn load_str(toml: &str) -> Result<Settings, ConfigError> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    Settings::load(Some(f.path()))
}

fn range(min: f64, max: f64) -> LogRange {
    LogRange::new(min, max).unwrap()
}

#[test]
fn embedded_default_validates() {
    let s = Settings::load(None).unwrap();
    assert_eq!(s.search().gamma.get(), range(-2.0, 2.0));
    assert_eq!(s.search().epsilon.get(), range(-2.0, 0.0));
    assert_eq!(s.schedule().trials_per_run.get(), 1);
    assert_eq!(s.dataset(), &DatasetSource::Embedded);
    assert_eq!(s.search().seed, None);
}

#[test]
fn a_partial_file_overrides_only_its_keys() {
    let s = load_str("[search]\ngamma = [-1.0, 1.0]\nseed = 7\n").unwrap();
    assert_eq!(s.search().gamma.get(), range(-1.0, 1.0));
    assert_eq!(s.search().c.get(), range(-2.0, 2.0));
    assert_eq!(s.search().seed, Some(7));
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let err = load_str("[search]\ngama = [-1.0, 1.0]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("gama"), "{err}");
    let err = load_str("[serach]\ngamma = [-1.0, 1.0]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("serach"), "{err}");
}

#[test]
fn impossible_values_name_their_key() {
    for (toml, key) in [
        ("[search]\nc = [2.0, 1.0]\n", "search.c"),
        ("[search]\nepsilon = [1.0, 1.0]\n", "search.epsilon"),
        ("[search]\ngamma = [nan, 1.0]\n", "search.gamma"),
        ("[search]\ngamma = [1.0]\n", "search.gamma"),
        ("[search]\nc = [-2.0, 300.0]\n", "search.c"),
        ("[search]\nc = [-2.0, 10.5]\n", "search.c"),
        (
            "[search]\nc = [-2.0, 5.5]\n[solver]\nengine = \"linfa-svm\"\n",
            "search.c",
        ),
        ("[search]\ngamma = [-7.0, 0.0]\n", "search.gamma"),
        ("[solver]\ntolerance = 0.0\n", "solver.tolerance"),
        ("[solver]\ntolerance = -1e-3\n", "solver.tolerance"),
        ("[schedule]\ncron = \"not a cron\"\n", "schedule.cron"),
        ("[schedule]\ncron = \"0 0 0 31 2 *\"\n", "schedule.cron"),
        (
            "[schedule]\ntimezone = \"Mars/Olympus\"\n",
            "schedule.timezone",
        ),
        (
            "[schedule]\ntrials_per_run = 0\n",
            "schedule.trials_per_run",
        ),
        ("[sink]\nurl = \"ftp://x/y\"\n", "sink.url"),
        ("[sink]\ncompression = \"zip\"\n", "sink.compression"),
        ("[sink]\npart_size_mib = 1\n", "sink.part_size_mib"),
        ("[log]\nlevel = \"loud=[\"\n", "log.level"),
        ("[log]\nlevel = \"warning\"\n", "log.level"),
        ("[search]\nsampler = \"grid\"\n", "search.sampler"),
        (
            "[search]\nsampler = \"tpe\"\ncv_folds = 0\n",
            "search.sampler",
        ),
        ("[search]\ncv_folds = 1001\n", "search.cv_folds"),
        ("[search]\ncv_folds = 1\n", "search.cv_folds"),
        ("[s3]\nsse = \"kms\"\n", "s3.sse"),
        ("[s3]\nkms_key_id = \"alias/svr-etl\"\n", "s3.kms_key_id"),
        (
            "[s3]\nsse = \"AES256\"\nkms_key_id = \"alias/svr-etl\"\n",
            "s3.kms_key_id",
        ),
    ] {
        let err = load_str(toml).unwrap_err().to_string();
        assert!(err.contains(&format!("`{key}`")), "{toml}: {err}");
    }
}

#[test]
fn wrong_types_are_errors_naming_the_key() {
    // The binary's tests (tests/cli.rs) cover the four the `config` crate used to
    // convert silently; these are the other kinds.
    for (toml, key) in [
        ("[sink]\nurl = 5\n", "sink.url"),
        ("[search]\ngamma = [\"-1\", 1.0]\n", "search.gamma"),
        ("[search]\nseed = \"7\"\n", "search.seed"),
    ] {
        let err = load_str(toml).unwrap_err().to_string();
        // An element of a range is named with its index: `search.gamma[0]`.
        assert!(err.contains(&format!("key `{key}")), "{toml}: {err}");
        assert!(err.contains("invalid type"), "{toml}: {err}");
    }
}

#[test]
fn the_printed_config_loads_back_to_the_same_settings() {
    for toml in [
        "",
        "[search]\ngamma = [-1.5, 0.25]\nseed = 42\n[sink]\nurl = \"s3://b/p\"\ncompression = \"gzip\"\n",
        "[sink]\nurl = \"file:///tmp/x\"\n[schedule]\ntimezone = \"Europe/Paris\"\ncron = \"*/5 * * * *\"\nshutdown_grace_secs = 0.25\n",
        "[s3]\nendpoint_url = \"http://127.0.0.1:9000\"\nregion = \"eu-west-1\"\n[log]\nlevel = \"svr_etl=debug,info\"\n",
    ] {
        let first = load_str(toml).unwrap();
        let printed = first.to_string();
        let again = load_str(&printed).unwrap_or_else(|e| panic!("{printed}\n{e}"));
        assert!(first.changed_keys(&again).is_empty(), "{printed}");
        assert_eq!(again.to_string().lines().skip(1).collect::<Vec<_>>(), printed.lines().skip(1).collect::<Vec<_>>());
    }
}

#[test]
fn changed_keys_name_what_a_reload_changes() {
    let a = Settings::load(None).unwrap();
    let b =
        load_str("[search]\ngamma = [-1.0, 1.0]\n[schedule]\ncron = \"* * * * * *\"\n").unwrap();
    assert_eq!(a.changed_keys(&b), ["schedule.cron", "search.gamma"]);
    assert!(a.changed_keys(&a.clone()).is_empty());
    let seeded = load_str("[search]\nseed = 3\n").unwrap();
    assert_eq!(a.changed_keys(&seeded), ["search.seed"]);
    assert_eq!(seeded.changed_keys(&a), ["search.seed"]);
    assert!(a.same_pipeline(&b));
    assert!(!a.same_pipeline(&load_str("[sink]\ncompression = \"gzip\"\n").unwrap()));
}

#[test]
fn a_reload_describes_each_change_with_its_old_and_new_value() {
    let a = Settings::load(None).unwrap();
    let b = load_str("[schedule]\ntrials_per_run = 2\n[search]\nseed = 3\n").unwrap();
    assert_eq!(
        a.describe_changes(&b),
        ["schedule.trials_per_run 1 -> 2", "search.seed (unset) -> 3"]
    );
}

#[test]
fn a_missing_file_is_named() {
    let err = Settings::load(Some(Path::new("/nonexistent/svr.toml")))
        .unwrap_err()
        .to_string();
    assert!(err.contains("/nonexistent/svr.toml"), "{err}");
}
