//! `svr-etl once` and `check-config` as a user runs them: the built binary, a real
//! directory, real exit codes.

use std::collections::HashMap;

use crate::helper::{
    field, file_path, files_under, ndjson, r2, stderr, stdout, svr_etl, write_nan_model_data,
};

#[test]
fn once_writes_three_objects_whose_facts_reproduce_test_r2() {
    let dir = tempfile::tempdir().unwrap();
    let out = svr_etl(dir.path()).arg("once").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    assert_eq!(line.lines().count(), 1, "{line}");

    // The default sink is a directory under the working directory.
    let sink = dir.path().join("svr-etl-output");
    let files = files_under(&sink);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(files[0].starts_with("data/"));
    assert!(files[1].starts_with("fact/dt="));
    assert!(files[2].starts_with("hyper/dt="));

    let data = ndjson(&std::fs::read_to_string(sink.join("data/data.json")).unwrap());
    let facts = ndjson(&std::fs::read_to_string(file_path(field(&line, "fact"))).unwrap());
    let hyper = ndjson(&std::fs::read_to_string(file_path(field(&line, "hyper"))).unwrap());
    assert_eq!(data.len(), 442);
    assert_eq!(facts.len(), data.len(), "one fact per data point");
    assert_eq!(hyper.len(), 1);
    let hyper = &hyper[0];
    let hyper_id = hyper["hyper_id"].as_i64().unwrap();
    assert_eq!(field(&line, "hyper_id"), hyper_id.to_string());
    assert_eq!(hyper["status"], "ok");

    let pred: HashMap<i64, f64> = facts
        .iter()
        .map(|f| {
            assert_eq!(f["hyper_id"].as_i64(), Some(hyper_id));
            (
                f["point_id"].as_i64().unwrap(),
                f["y_pred"].as_f64().unwrap(),
            )
        })
        .collect();
    let (truth, predicted): (Vec<f64>, Vec<f64>) = data
        .iter()
        .filter(|row| row["is_train"] == false)
        .map(|row| {
            let id = row["point_id"].as_i64().unwrap();
            (row["y_true"].as_f64().unwrap(), pred[&id])
        })
        .unzip();
    assert_eq!(truth.len(), 89);
    let recomputed = r2(&truth, &predicted);
    let recorded = hyper["test_r2"].as_f64().unwrap();
    assert!(
        (recomputed - recorded).abs() <= 1e-9,
        "{recomputed} vs {recorded}"
    );
}

#[test]
fn once_replays_given_parameters_and_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let sink = format!("file://{}/out", dir.path().display());
    let run = |args: &[&str]| {
        let out = svr_etl(dir.path())
            .args(["once", "--sink", &sink])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let line = stdout(&out);
        let hyper = std::fs::read_to_string(file_path(field(&line, "hyper"))).unwrap();
        ndjson(&hyper).remove(0)
    };
    let given = run(&[
        "--gamma",
        "16.391207",
        "--c",
        "40.452183",
        "--epsilon",
        "0.17571951",
    ]);
    assert_eq!(given["gamma"], 16.391207);
    assert_eq!(given["C"], 40.452183);
    assert!(given["seed"].is_null());
    // The seed pipeline published 0.5548645916432509 for these parameters.
    assert!((given["test_r2"].as_f64().unwrap() - 0.5548645916432509).abs() < 1e-4);

    let first = run(&[]);
    let seed = first["seed"].as_u64().unwrap().to_string();
    let again = run(&["--seed", &seed]);
    for key in ["gamma", "C", "epsilon", "test_r2", "study"] {
        assert_eq!(first[key], again[key], "{key}");
    }
    assert_ne!(first["hyper_id"], again["hyper_id"]);
    assert_ne!(
        first["study"], given["study"],
        "hand-given parameters are their own study"
    );
}

#[test]
fn a_bad_config_exits_78_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    for (toml, needle) in [
        ("[search]\ngama = [-1.0, 1.0]\n", "gama"),
        ("[search]\nc = [2.0, 1.0]\n", "`search.c`"),
        ("[solver]\ntolerance = -1.0\n", "`solver.tolerance`"),
        ("[search\n", "bad.toml"),
    ] {
        std::fs::write(&path, toml).unwrap();
        for cmd in ["once", "check-config", "run"] {
            let out = svr_etl(dir.path())
                .args([cmd, "--config"])
                .arg(&path)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(78), "{toml}");
            let err = stderr(&out);
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(needle) && err.contains("bad.toml"), "{err}");
        }
    }
    assert!(files_under(dir.path()).iter().all(|f| f == "bad.toml"));
}

#[test]
fn wrong_types_exit_78_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typed.toml");
    for (toml, key) in [
        (
            "[schedule]\ntrials_per_run = true\n",
            "schedule.trials_per_run",
        ),
        (
            "[schedule]\ntrials_per_run = 3.5\n",
            "schedule.trials_per_run",
        ),
        ("[s3]\nforce_path_style = 12345\n", "s3.force_path_style"),
        ("[solver]\ntolerance = true\n", "solver.tolerance"),
    ] {
        std::fs::write(&path, toml).unwrap();
        for cmd in ["check-config", "run"] {
            let out = svr_etl(dir.path())
                .args([cmd, "--config"])
                .arg(&path)
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(78), "{toml}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(&format!("key `{key}`")), "{err}");
        }
    }
}

#[test]
fn check_config_prints_a_file_that_loads_back() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.toml");
    std::fs::write(
        &first,
        "[search]\nseed = 9\nc = [-1.0, 3.0]\n[sink]\nurl = \"relative/out\"\ncompression = \"gzip\"\n[schedule]\ncron = \"*/10 * * * *\"\ntimezone = \"Asia/Tokyo\"\n",
    )
    .unwrap();
    let print = |path: &std::path::Path| {
        let out = svr_etl(dir.path())
            .args(["check-config", "--config"])
            .arg(path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };
    let printed = print(&first);
    let second = dir.path().join("second.toml");
    std::fs::write(&second, &printed).unwrap();
    let again = print(&second);
    let body = |text: &str| text.lines().skip(1).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&printed), body(&again));
    assert!(printed.contains("url = \"relative/out\""), "{printed}");
    assert!(printed.contains("seed = 9"), "{printed}");
}

#[test]
fn command_line_errors_exit_64_and_output_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["bogus"][..],
        &["once", "--trials", "0"],
        &["once", "--gamma", "1"],
    ] {
        let out = svr_etl(dir.path()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", stderr(&out));
    }
    let out = svr_etl(dir.path()).arg("--version").output().unwrap();
    assert!(out.status.success());
    // A full disk is an error; a reader that closed the pipe is not.
    let full = std::fs::File::create("/dev/full").unwrap();
    let out = svr_etl(dir.path())
        .arg("sql")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("writing to standard output"),
        "{}",
        stderr(&out)
    );
    let mut child = svr_etl(dir.path())
        .arg("sql")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn check_config_refuses_what_run_would_fail_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    for (toml, code, needle) in [
        (
            "[dataset]\npath = \"missing.json\"\n",
            65,
            "data set missing.json",
        ),
        (
            "[s3]\nendpoint_url = \"http://\"\n",
            78,
            "`s3.endpoint_url`",
        ),
        (
            "[s3]\nendpoint_url = \"https://[::1\"\n",
            78,
            "`s3.endpoint_url`",
        ),
        (
            "[s3]\nendpoint_url = \"http://127.0.0.1:99999\"\n",
            78,
            "`s3.endpoint_url`",
        ),
        ("[sink]\npart_size_mib = 5120\n", 78, "`sink.part_size_mib`"),
        ("[sink]\nurl = \"s3:/bkt/p\"\n", 78, "`sink.url`"),
        ("[sink]\nurl = \"s3:bkt/p\"\n", 78, "`sink.url`"),
        (
            "[schedule]\ncron = \"0 0 0 31 2 *\"\n",
            78,
            "`schedule.cron`",
        ),
        ("[log]\nlevel = \"warning\"\n", 78, "`log.level`"),
        ("[search]\nc = [-2.0, 11.0]\n", 78, "`search.c`"),
    ] {
        std::fs::write(&path, toml).unwrap();
        for cmd in ["check-config", "once"] {
            let out = svr_etl(dir.path())
                .args([cmd, "--config"])
                .arg(&path)
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(code), "{cmd} {toml}: {err}");
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(err.contains(needle), "{err}");
        }
    }
    assert!(!dir.path().join("svr-etl-output").exists());
}

#[test]
fn a_clock_outside_the_id_range_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    for (when, cmd) in [
        ("2095-01-01 00:00:00", "once"),
        ("2024-06-01 00:00:00", "check-config"),
    ] {
        let mut faked = std::process::Command::new("faketime");
        faked.current_dir(dir.path()).arg(when);
        let out = faked
            .arg(svr_etl(dir.path()).get_program())
            .arg(cmd)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("faketime is installed (.ci/run installs it)");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{when}: {err}");
        assert!(err.contains("set the system clock"), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
    }
    assert!(!dir.path().join("svr-etl-output").exists());
}

#[test]
fn a_missing_data_set_object_is_written_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("svr-etl-output/data/data.json");
    for _ in 0..2 {
        let out = svr_etl(dir.path()).arg("once").output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(ndjson(&std::fs::read_to_string(&data).unwrap()).len(), 442);
        std::fs::remove_file(&data).unwrap();
    }
}

#[test]
fn environment_overrides_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = svr_etl(dir.path())
        .arg("check-config")
        .env("SVR_ETL__SEARCH__GAMMA", "-1,1")
        .env("SVR_ETL__SINK__COMPRESSION", "gzip")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("gamma = [-1.0, 1.0]"), "{text}");
    assert!(text.contains("compression = \"gzip\""), "{text}");

    let out = svr_etl(dir.path())
        .arg("check-config")
        .env("SVR_ETL__SEARCH__EPSILON", "0,-1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        stderr(&out).contains("`search.epsilon`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_malformed_data_file_exits_65_naming_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.json");
    std::fs::write(
        &data,
        "{\"point_id\":0,\"is_train\":true,\"a\":1,\"y_true\":1}\n\
         {\"point_id\":1,\"is_train\":true,\"a\":\"oops\",\"y_true\":2}\n",
    )
    .unwrap();
    let out = svr_etl(dir.path())
        .arg("once")
        .env("SVR_ETL__DATASET__PATH", &data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(65));
    let err = stderr(&out);
    assert!(err.contains("rows.json line 2: key `a`"), "{err}");
    assert!(
        !dir.path().join("svr-etl-output").exists(),
        "nothing written"
    );
}

#[test]
fn a_custom_data_set_with_other_columns_runs() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.json");
    let rows: String = (0..40)
        .map(|i| {
            let x = i as f64 / 10.0;
            format!(
                "{{\"point_id\":{i},\"is_train\":{},\"x1\":{x},\"x2\":{},\"y_true\":{}}}\n",
                i % 4 != 0,
                (x * 3.0).cos(),
                x.sin() * 10.0
            )
        })
        .collect();
    std::fs::write(&data, rows).unwrap();
    let out = svr_etl(dir.path())
        .args(["once", "--gamma", "1", "--c", "10", "--epsilon", "0.1"])
        .env("SVR_ETL__DATASET__PATH", &data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let facts = std::fs::read_to_string(file_path(field(&stdout(&out), "fact"))).unwrap();
    assert_eq!(ndjson(&facts).len(), 40);
}

#[test]
fn a_failing_fit_is_a_failed_trial_not_a_crash() {
    // gamma = 5e-324 makes the RBF width 1/gamma infinite; with features +-1e300 the
    // squared distances are infinite too, the kernel is NaN, and so is the model.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("rows.json");
    write_nan_model_data(&data);
    let out = svr_etl(dir.path())
        .args(["once", "--gamma", "5e-324", "--c", "1", "--epsilon", "0.1"])
        .env("SVR_ETL__DATASET__PATH", &data)
        // Two training rows are too few to cross-validate.
        .env("SVR_ETL__SEARCH__CV_FOLDS", "0")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("failed"), "{err}");
    let files = files_under(&dir.path().join("svr-etl-output"));
    assert!(files.iter().all(|f| !f.starts_with("fact/")), "{files:?}");
    let hyper: Vec<_> = files.iter().filter(|f| f.starts_with("hyper/")).collect();
    assert_eq!(hyper.len(), 1, "{files:?}");
    let record =
        ndjson(&std::fs::read_to_string(dir.path().join("svr-etl-output").join(hyper[0])).unwrap())
            .remove(0);
    assert_eq!(record["status"], "failed");
    assert!(record["error"].as_str().unwrap().len() > 5);
    assert!(record["test_r2"].is_null());
}

#[test]
fn gzip_compression_writes_json_gz_that_decodes_to_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let out = svr_etl(dir.path())
        .args(["once", "--gamma", "1", "--c", "1", "--epsilon", "0.1"])
        .env("SVR_ETL__SINK__COMPRESSION", "gzip")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let line = stdout(&out);
    let fact = file_path(field(&line, "fact"));
    assert!(fact.to_string_lossy().ends_with(".json.gz"));
    let bytes = std::fs::read(&fact).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut text)
        .unwrap();
    assert_eq!(ndjson(&text).len(), 442);
    assert!(dir.path().join("svr-etl-output/data/data.json.gz").exists());
}
