//! Malformed data sets through the binary: each gives one clear line naming the file
//! and the line or key (exit 65), or a correct run; never a panic.

use std::process::Output;

use crate::helper::{stderr, svr_etl};

const GOOD: &str = "{\"point_id\":0,\"is_train\":true,\"a\":1.0,\"y_true\":1.0}\n{\"point_id\":1,\"is_train\":true,\"a\":2.0,\"y_true\":2.0}\n{\"point_id\":2,\"is_train\":false,\"a\":3.0,\"y_true\":3.0}\n{\"point_id\":3,\"is_train\":false,\"a\":4.0,\"y_true\":5.0}\n";

fn once(dir: &std::path::Path, data: &[u8]) -> Output {
    let path = dir.join("rows.json");
    std::fs::write(&path, data).unwrap();
    svr_etl(dir)
        .args(["once", "--gamma", "1", "--c", "1", "--epsilon", "0.1"])
        .env("SVR_ETL__DATASET__PATH", &path)
        // Two training rows are too few to cross-validate.
        .env("SVR_ETL__SEARCH__CV_FOLDS", "0")
        .output()
        .unwrap()
}

#[test]
fn malformed_data_sets_are_refused_with_one_line_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let row = |i: usize, rest: &str| format!("{{\"point_id\":{i},{rest}}}\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "is_train"),
        ("whitespace", b"\n  \n\t\n".to_vec(), "is_train"),
        (
            "not UTF-8",
            GOOD.replace("3.0,", "3.\u{e9},")
                .into_bytes()
                .iter()
                .map(|b| if *b == 0xc3 { 0xe9 } else { *b })
                .collect(),
            "line 3",
        ),
        (
            "repeated key",
            GOOD.replace("\"a\":2.0", "\"a\":2.0,\"a\":7.0")
                .into_bytes(),
            "line 2: key `a`",
        ),
        (
            "huge target",
            GOOD.replace("\"y_true\":5.0", "\"y_true\":1e300")
                .into_bytes(),
            "line 4: key `y_true`",
        ),
        (
            "negative huge target",
            GOOD.replace("\"y_true\":1.0", "\"y_true\":-1e300")
                .into_bytes(),
            "line 1: key `y_true`",
        ),
        ("NaN", GOOD.replace("4.0", "NaN").into_bytes(), "line 4"),
        (
            "cut short",
            GOOD.as_bytes()[..GOOD.len() - 20].to_vec(),
            "line 4",
        ),
        (
            "no is_train",
            GOOD.replace("\"is_train\":true,\"a\":2.0", "\"a\":2.0")
                .into_bytes(),
            "line 2: key `is_train`",
        ),
        (
            "fractional id",
            GOOD.replace("\"point_id\":1,", "\"point_id\":1.5,")
                .into_bytes(),
            "line 2: key `point_id`",
        ),
        (
            "id beyond i64",
            GOOD.replace("\"point_id\":1,", "\"point_id\":99999999999999999999,")
                .into_bytes(),
            "line 2: key `point_id`",
        ),
        (
            "is_train as text",
            GOOD.replace(
                "\"is_train\":false,\"a\":3.0",
                "\"is_train\":\"no\",\"a\":3.0",
            )
            .into_bytes(),
            "line 3: key `is_train`",
        ),
        (
            "nested value",
            GOOD.replace("\"a\":3.0", "\"a\":{\"x\":1}").into_bytes(),
            "line 3: key `a`",
        ),
        (
            "array row",
            format!("{GOOD}[1, 2, 3]\n").into_bytes(),
            "line 5",
        ),
        (
            "trailing garbage",
            format!("{GOOD}{{\"point_id\":9}} x\n").into_bytes(),
            "line 5",
        ),
        (
            "duplicate id",
            format!("{GOOD}{}", row(2, "\"is_train\":true,\"a\":1,\"y_true\":1")).into_bytes(),
            "line 5: key `point_id`",
        ),
        (
            "no features",
            "{\"point_id\":0,\"is_train\":true,\"y_true\":1}\n"
                .as_bytes()
                .to_vec(),
            "line 1",
        ),
        (
            "extra column",
            format!(
                "{GOOD}{}",
                row(9, "\"is_train\":true,\"a\":1,\"b\":2,\"y_true\":1")
            )
            .into_bytes(),
            "line 5: key `b`",
        ),
        (
            "constant test target",
            GOOD.replace("\"y_true\":5.0", "\"y_true\":3.0")
                .into_bytes(),
            "key `y_true`",
        ),
        (
            "one test row",
            GOOD.replace(
                "\"is_train\":false,\"a\":3.0",
                "\"is_train\":true,\"a\":3.0",
            )
            .into_bytes(),
            "key `is_train`",
        ),
    ];
    for (what, data, needle) in &cases {
        let out = once(dir.path(), data);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(65), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(
            err.contains("rows.json") && err.contains(needle),
            "{what}: {err}"
        );
    }
    assert!(
        !dir.path().join("svr-etl-output").exists(),
        "nothing written"
    );
}

#[test]
fn too_few_training_rows_for_the_folds_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.json");
    std::fs::write(&path, GOOD).unwrap();
    let out = svr_etl(dir.path())
        .args(["once", "--gamma", "1", "--c", "1", "--epsilon", "0.1"])
        .env("SVR_ETL__DATASET__PATH", &path)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("rows.json")
            && err.contains("search.cv_folds = 5")
            && err.contains("there are 2"),
        "{err}"
    );
}

#[test]
fn unusual_but_valid_data_sets_run() {
    let dir = tempfile::tempdir().unwrap();
    for (what, data) in [
        (
            "byte-order mark",
            [b"\xef\xbb\xbf".as_slice(), GOOD.as_bytes()].concat(),
        ),
        ("CRLF line ends", GOOD.replace('\n', "\r\n").into_bytes()),
        ("blank lines", GOOD.replace('\n', "\n\n").into_bytes()),
    ] {
        let out = once(dir.path(), &data);
        assert!(out.status.success(), "{what}: {}", stderr(&out));
    }
}

#[test]
fn a_hundred_thousand_rows_are_refused_or_run_by_their_training_size() {
    let dir = tempfile::tempdir().unwrap();
    let rows = |train: fn(usize) -> bool| -> Vec<u8> {
        (0..100_000)
            .map(|i| {
                format!(
                    "{{\"point_id\":{i},\"is_train\":{},\"a\":{},\"y_true\":{}}}\n",
                    train(i),
                    i as f64 * 1e-5,
                    (i as f64 * 1e-3).sin()
                )
            })
            .collect::<String>()
            .into_bytes()
    };
    // 99 rows in 100 for training: far past solver.max_train_rows, and a kernel of
    // some 73 GiB.
    let out = once(dir.path(), &rows(|i| i % 100 != 0));
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(65), "{err}");
    assert!(err.contains("99000 training rows"), "{err}");
    assert!(!dir.path().join("svr-etl-output").exists());
    // A few hundred training rows and the rest test rows: a correct run.
    let out = once(dir.path(), &rows(|i| i % 250 == 0));
    assert!(out.status.success(), "{}", stderr(&out));
}
