//! `pgcache serve --tls-cert --tls-key`: the API over HTTPS, with a real TLS client that
//! trusts only the server's own certificate.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test by panicking"
)]

use std::sync::Arc;
use std::time::Duration;

use pgcache_tests::Scratch;
use pgcache_tests::server::{Server, ServerSetup};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// A self-signed certificate for `localhost`, as PEM files in `dir`; returns its DER.
fn certificate(dir: &std::path::Path) -> CertificateDer<'static> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
    made.cert.der().clone()
}

/// One HTTP/1.1 request over TLS to `port`, trusting only `cert`; the whole response.
async fn get(port: u16, cert: &CertificateDer<'static>, path: &str, token: &str) -> String {
    let mut roots = RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("a TLS handshake with the server's certificate");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    // A peer that closes without close_notify still gave us what it sent.
    let _ = tls.read_to_end(&mut response).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_over_https_and_only_there() {
    let s = Scratch::new("serve_tls").await;
    s.sql("CREATE TABLE {s}.t (id bigint); INSERT INTO {s}.t VALUES (1);")
        .await;
    let files = tempfile::tempdir().unwrap();
    let cert = certificate(files.path());
    let cert_path = files.path().join("cert.pem");
    let key_path = files.path().join("key.pem");
    let server = Server::start(ServerSetup {
        scratch: &s,
        a: "operations = [\"query\", \"cache-stats\"]",
        b: "",
        extra: "",
        drain: 1.0,
        args: &[
            "--tls-cert",
            cert_path.to_str().unwrap(),
            "--tls-key",
            key_path.to_str().unwrap(),
        ],
    })
    .await;
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let [a, _] = server.tokens.clone();

    // A client that connects and never speaks: the requests below are answered all the same.
    let _idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();

    let health = get(port, &cert, "/healthz", "").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let stats = get(port, &cert, "/v1/stats", &a).await;
    assert!(stats.starts_with("HTTP/1.1 200"), "{stats}");
    assert!(stats.contains("\"total_files\""), "{stats}");
    let denied = get(port, &cert, "/v1/stats", "pgc_wrong").await;
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_refused_before_listening() {
    let files = tempfile::tempdir().unwrap();
    certificate(files.path());
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(
        files.path().join("other.pem"),
        other.signing_key.serialize_pem(),
    )
    .unwrap();
    std::fs::write(files.path().join("empty.pem"), "").unwrap();
    std::fs::write(
        files.path().join("pgcache.toml"),
        "[tenants.a]\nrole = \"nobody\"\ntokens_sha256 = [\"00\"]\n",
    )
    .unwrap();
    let serve = |cert: &str, key: &str| {
        std::process::Command::new(pgcache_tests::pgcache_bin())
            .arg("--config")
            .arg(files.path().join("pgcache.toml"))
            .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(files.path().join(cert))
            .arg("--tls-key")
            .arg(files.path().join(key))
            .env("DATABASE_URL", pgcache_tests::database_url())
            .output()
            .unwrap()
    };
    for (cert, key, expect) in [
        ("cert.pem", "other.pem", "does not fit the certificate"),
        ("empty.pem", "key.pem", "empty.pem"),
        ("cert.pem", "missing.pem", "missing.pem"),
    ] {
        let out = serve(cert, key);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{cert} {key}: {stdout}");
        assert!(!stdout.contains("listening"), "{stdout}");
        assert!(stderr.contains(expect), "{cert} {key}: {stderr}");
    }
}
