//! `config/iam-policy.json` allows exactly the S3 actions the code calls, each on the
//! narrowest resource: the calls are read from the S3 sink's source, so a new call
//! without its permission (or a permission no call needs) fails here.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// The IAM action and resource (relative to `arn:aws:s3:::BUCKET`) each client call
/// needs.
const NEEDS: &[(&str, &str, &str)] = &[
    ("put_object", "s3:PutObject", "/PREFIX/*"),
    ("create_multipart_upload", "s3:PutObject", "/PREFIX/*"),
    ("upload_part", "s3:PutObject", "/PREFIX/*"),
    ("complete_multipart_upload", "s3:PutObject", "/PREFIX/*"),
    (
        "abort_multipart_upload",
        "s3:AbortMultipartUpload",
        "/PREFIX/*",
    ),
    ("get_object", "s3:GetObject", "/PREFIX/*"),
    ("head_object", "s3:GetObject", "/PREFIX/*"),
    ("delete_object", "s3:DeleteObject", "/PREFIX/running/*"),
    ("list_objects_v2", "s3:ListBucket", ""),
    (
        "list_multipart_uploads",
        "s3:ListBucketMultipartUploads",
        "",
    ),
];

/// Every `client.<operation>(` in the S3 sink's source.
fn client_calls() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/s3");
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (at, _) in text.match_indices(".client") {
            let rest = text[at + ".client".len()..].trim_start();
            let Some(rest) = rest.strip_prefix('.') else {
                continue;
            };
            let op: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if rest[op.len()..].starts_with('(') {
                calls.insert(op);
            }
        }
    }
    calls
}

/// (action, resource) pairs the policy allows.
fn allowed() -> BTreeSet<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy.json");
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut pairs = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        let resource = statement["Resource"].as_str().unwrap();
        let resource = resource.strip_prefix("arn:aws:s3:::BUCKET").unwrap();
        for action in statement["Action"].as_array().unwrap() {
            pairs.insert((action.as_str().unwrap().to_string(), resource.to_string()));
        }
    }
    pairs
}

#[test]
fn the_policy_allows_exactly_what_the_code_calls() {
    let calls = client_calls();
    assert!(calls.len() >= 9, "{calls:?}");
    let mut needed = BTreeSet::new();
    for op in &calls {
        let (_, action, resource) = NEEDS
            .iter()
            .find(|(name, _, _)| name == op)
            .unwrap_or_else(|| panic!("client call {op} has no entry in NEEDS"));
        needed.insert((action.to_string(), resource.to_string()));
    }
    assert_eq!(allowed(), needed);
}

#[test]
fn listing_is_limited_to_the_prefix() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy.json");
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let list = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Action"][0] == "s3:ListBucket")
        .unwrap();
    assert_eq!(
        list["Condition"]["StringLike"]["s3:prefix"],
        serde_json::json!(["PREFIX/*"])
    );
}

#[test]
fn the_kms_statement_allows_what_sse_kms_writes_need_on_one_key() {
    // S3 asks KMS for a data key under the caller's permissions on every SSE-KMS
    // write, and reads it back (Decrypt) for each part of a multipart upload.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/iam-policy-kms.json");
    let policy: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(
        statements[0]["Action"],
        serde_json::json!(["kms:GenerateDataKey", "kms:Decrypt"])
    );
    assert_eq!(
        statements[0]["Resource"],
        "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"
    );
    // The hint a refused write logs names the file.
    let answers = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sink/s3/answers.rs");
    assert!(std::fs::read_to_string(answers)
        .unwrap()
        .contains("iam-policy-kms.json"));
}
