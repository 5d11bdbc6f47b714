//! The unit file, checked by systemd's own tools.

use std::path::Path;
use std::process::Command;

fn install_root() -> tempfile::TempDir {
    // `verify` resolves ExecStart and the unit's dependencies inside --root.
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for dir in ["usr/bin", "bin", "usr/lib/systemd", "etc/systemd/system"] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    std::fs::copy(env!("CARGO_BIN_EXE_svr-etl"), r.join("usr/bin/svr-etl")).unwrap();
    std::fs::copy("/bin/kill", r.join("bin/kill")).unwrap();
    let status = Command::new("cp")
        .args(["-r", "/usr/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(status.success());
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/svr-etl.service");
    std::fs::copy(unit, r.join("etc/systemd/system/svr-etl.service")).unwrap();
    root
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let root = install_root();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .arg("svr-etl.service")
        .output()
        .expect("systemd-analyze is installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // verify exits 0 on unknown or misspelt settings and only warns, so any output fails.
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn the_unit_rates_2_or_lower_in_systemd_analyze_security() {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/svr-etl.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for svr-etl.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no score in {text}"));
    assert!(score <= 2.0, "exposure {score}");
}
