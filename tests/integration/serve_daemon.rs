//! Issue 18 item 6: `serve` like the original's deploy.sh. The real binary runs `serve --ssl
//! --daemon` (a self-signed certificate made and kept in the data dir), is reached over HTTPS
//! by a real client that verifies the certificate (`curl --cacert`), says it runs
//! (`--status`, exit 0), stops gracefully (`--stop`), and then says it does not (exit 3).
//! `--tls-cert/--tls-key` serve a certificate of one's own; HTTPS marks the cookie Secure.

use crate::support::{self, until, TestServer};
use std::path::Path;
use std::process::Output;

const BIN: &str = env!("CARGO_BIN_EXE_architect");
const PASSWORD: &str = "serve-daemon-pw-1";

fn curl_present() -> bool {
    support::prerequisite(
        std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "curl",
        "apt-get install -y curl",
    )
}

async fn serve(data: &Path, extra: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("serve")
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--pid-file",
            data.join("serve.pid").to_str().unwrap(),
            "--log-file",
            data.join("serve.log").to_str().unwrap(),
        ])
        .args(extra)
        .envs(support::database_env_for(data))
        .env("ARCHITECT_PASSWORD", PASSWORD)
        .env("ARCHITECT_LOCAL_NODE", "false");
    for var in [
        "PORT",
        "HOST",
        "ARCHITECT_DATA_DIR",
        "ARCHITECT_SERVE_PID_FILE",
        "ARCHITECT_SERVE_LOG_FILE",
        "ARCHITECT_SSL",
        "SESSION_COOKIE_SECURE",
    ] {
        cmd.env_remove(var);
    }
    cmd.output().await.expect("architect runs")
}

fn curl(args: &[&str]) -> Output {
    std::process::Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20"])
        .args(args)
        .output()
        .expect("curl runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_ssl_daemon_status_stop_with_the_real_binary() {
    if !curl_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let out = serve(&data, &["--status"]).await;
    assert_eq!(out.status.code(), Some(3), "not running yet");

    // The admin password given as a flag goes to the daemon's environment, not its argv.
    let out = serve(&data, &["--ssl", "--daemon", "--admin-password", PASSWORD]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid: u32 = std::fs::read_to_string(data.join("serve.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(PASSWORD));

    let addr_re = regex::Regex::new(r"listening on https://(127\.0\.0\.1:\d+)").unwrap();
    let log_path = data.join("serve.log");
    let addr = until("the background server to listen", || async {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        addr_re.captures(&log).map(|c| c[1].to_string())
    })
    .await;
    let cert = data.join("tls/cert.pem");
    let key = data.join("tls/key.pem");
    assert!(cert.exists() && key.exists(), "kept in the data dir");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
        0,
        "the key is private"
    );
    let url = format!("https://{addr}");

    // A verifying client trusts it with the kept certificate; without it, it refuses.
    let ok = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--write-out",
        "\n%{http_code}",
        &format!("{url}/health"),
    ]);
    let body = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success() && body.ends_with("\n200"),
        "{body} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = curl(&[&format!("{url}/health")]);
    assert!(!refused.status.success(), "unverified certificate accepted");
    // Also by name (localhost is in the certificate).
    let port = addr.rsplit(':').next().unwrap();
    let by_name = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        &format!("https://localhost:{port}/health"),
    ]);
    assert!(
        by_name.status.success(),
        "{}",
        String::from_utf8_lossy(&by_name.stderr)
    );
    // HTTPS turns Secure cookies on.
    let login = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--include",
        "--header",
        "content-type: application/json",
        "--data",
        &format!(r#"{{"username":"architect","password":"{PASSWORD}"}}"#),
        &format!("{url}/login"),
    ]);
    let head = String::from_utf8_lossy(&login.stdout).to_lowercase();
    let cookie = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {head}"));
    assert!(cookie.contains("secure"), "{cookie}");

    let out = serve(&data, &["--status"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&pid.to_string()));
    let again = serve(&data, &["--ssl", "--daemon"]).await;
    assert!(!again.status.success(), "a second daemon is refused");

    let cert_before = std::fs::read(&cert).unwrap();
    let out = serve(&data, &["--stop"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("stopped"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!data.join("serve.pid").exists());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("stopped cleanly"), "graceful stop: {log}");
    assert!(!log.contains(PASSWORD));
    let out = serve(&data, &["--status"]).await;
    assert_eq!(out.status.code(), Some(3));

    // The certificate is kept: a second start serves the same one.
    let out = serve(&data, &["--ssl", "--daemon"]).await;
    assert!(out.status.success());
    let log_len = std::fs::read_to_string(&log_path).unwrap().len();
    until("the second start to listen", || async {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        addr_re
            .is_match(&log[log_len.min(log.len())..])
            .then_some(())
    })
    .await;
    assert_eq!(std::fs::read(&cert).unwrap(), cert_before);
    let out = serve(&data, &["--stop"]).await;
    assert!(out.status.success());
    support::drop_database_of(&data).await;
}

// curl runs blocking; the server needs threads of its own meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn serve_with_ones_own_certificate_is_verified_by_a_client() {
    if !curl_present() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = tmp.path().join("own-cert.pem");
    let key = tmp.path().join("own-key.pem");
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let t = TestServer::start_with(|c| {
        c.nodes.local_node = false;
        c.tls.tls_cert = Some(cert.clone());
        c.tls.tls_key = Some(key.clone());
    })
    .await;
    let url = t.url.replacen("http://", "https://", 1);
    let out = curl(&[
        "--cacert",
        cert.to_str().unwrap(),
        "--write-out",
        "\n%{http_code}",
        &format!("{url}/health"),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("\n200"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Plain HTTP on the TLS port gets no answer.
    let plain = curl(&[&format!("{}/health", t.url)]);
    assert!(!plain.status.success());
    assert!(t.state().config.session_cookie_secure);
    t.stop().await;

    // A key that does not match the certificate fails the start, saying so.
    let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
    std::fs::write(&key, other.key_pair.serialize_pem()).unwrap();
    let mut config = support::config(&tmp.path().join("d2"));
    config.tls.tls_cert = Some(cert.clone());
    config.tls.tls_key = Some(key.clone());
    let err = architect::serve::start(config, architect::clock::Clock::System)
        .await
        .err()
        .expect("refused");
    assert!(format!("{err:#}").contains("do not go together"), "{err:#}");
}
