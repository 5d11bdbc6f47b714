//! What the benchmarks share: an S3 server on loopback.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's S3 server on a free loopback port with a bucket `bench`; the child and its
/// endpoint URL. Kill the child when done.
pub fn start_moto() -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moto = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install -r .ci/requirements.txt)");
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let put = format!(
        "import urllib.request as u; u.urlopen(u.Request('{endpoint}/bench', method='PUT'))"
    );
    assert!(Command::new("python3")
        .args(["-c", &put])
        .status()
        .unwrap()
        .success());
    (moto, endpoint)
}
