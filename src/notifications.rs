//! Telling the operator: each swap, "every account exhausted", a recovered account and a
//! stalled task is POSTed as JSON to the webhook (https through rustls, or http) and/or
//! given on stdin to the command (an argv, no shell). Sending happens in the
//! background: a failure is logged and never holds up a reconcile. A webhook's path
//! and query are often its secret (Slack, ntfy): only its host is ever logged.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use crate::api::NotificationsSpec;

/// How long one notification (one try of a webhook) may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How many times a webhook is tried, the first included.
const TRIES: u32 = 3;

/// The wait before the second try; doubled before each next one.
const BACKOFF: Duration = Duration::from_millis(500);

/// Sends `event` (an object with at least `event`) as the spec says, in the background.
pub(crate) fn send(spec: &NotificationsSpec, event: Value) {
    if !spec.webhook.is_empty() {
        let (url, ca, body) = (
            spec.webhook.clone(),
            spec.ca_file.clone(),
            event.to_string(),
        );
        tokio::spawn(async move {
            let host = host_of(&url);
            match post(&url, &ca, body).await {
                Ok(status) => debug!(host, status, "notified"),
                Err(e) => warn!(host, error = %e, "webhook failed"),
            }
        });
    }
    if let Some((program, args)) = spec.command.split_first() {
        let (program, args, body) = (program.clone(), args.to_vec(), event.to_string());
        tokio::spawn(async move {
            let run = async {
                let mut child = tokio::process::Command::new(&program)
                    .args(&args)
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .spawn()?;
                if let Some(mut stdin) = child.stdin.take() {
                    stdin.write_all(body.as_bytes()).await?;
                }
                child.wait().await
            };
            match tokio::time::timeout(TIMEOUT, run).await {
                Ok(Ok(status)) if status.success() => debug!(program, "notified"),
                Ok(Ok(status)) => warn!(program, %status, "notification command failed"),
                Ok(Err(e)) => warn!(program, error = %e, "notification command could not run"),
                Err(_) => warn!(program, "notification command timed out"),
            }
        });
    }
}

/// The host of `url`, all that is logged of it.
pub(crate) fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "(not a URL)".to_owned())
}

/// Why a webhook failed, without its URL.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The extra certificate authorities could not be read.
    #[error("certificate authorities {path}: {reason}")]
    Ca {
        /// The PEM file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Client(String),
    /// Every try failed; the last one's reason.
    #[error("{tries} tries, the last: {last}")]
    Tries {
        /// How many.
        tries: u32,
        /// The last failure (a status, or why nothing came back).
        last: String,
    },
}

/// The client: rustls with the ring provider, the system's roots, and those of `ca`
/// when given.
fn client(ca: &Path) -> Result<reqwest::Client, Error> {
    let builder = crate::https::builder(ca).map_err(|reason| Error::Ca {
        path: ca.to_path_buf(),
        reason,
    })?;
    // Without `without_url`, an error would carry the URL, and its secret, to the log.
    builder
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Error::Client(e.without_url().to_string()))
}

/// POSTs `body` to `url`, trying again after a connection failure, a timeout or a 5xx
/// answer, with backoff; the answer's status code.
async fn post(url: &str, ca: &Path, body: String) -> Result<u16, Error> {
    let client = client(ca)?;
    let mut wait = BACKOFF;
    let mut last = String::new();
    for attempt in 1..=TRIES {
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => return Ok(answer.status().as_u16()),
            Ok(answer) if !answer.status().is_server_error() => {
                return Err(Error::Tries {
                    tries: attempt,
                    last: format!("answered {}", answer.status()),
                });
            }
            Ok(answer) => last = format!("answered {}", answer.status()),
            // A certificate the client does not trust stays so: not tried again.
            Err(e) if is_tls(&e) => {
                return Err(Error::Tries {
                    tries: attempt,
                    last: error_text(e),
                });
            }
            Err(e) => last = error_text(e),
        }
        if attempt < TRIES {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    Err(Error::Tries { tries: TRIES, last })
}

/// Whether TLS refused the server (its certificate, most often), somewhere in the chain.
fn is_tls(e: &reqwest::Error) -> bool {
    use std::error::Error as _;
    let mut source = e.source();
    while let Some(cause) = source {
        // rustls's error comes wrapped in I/O errors, which hide it from `source()`.
        let mut inner: &(dyn std::error::Error + 'static) = cause;
        while let Some(wrapped) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            inner = wrapped;
        }
        if inner.is::<rustls::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

/// A request error in words, without the URL, with its causes.
fn error_text(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
    use tokio::net::TcpListener;

    /// Reads one HTTP request (head and body), answers `status`; the request's text.
    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, status: &str) -> String {
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
            assert!(n > 0, "the request ended early: {text}");
        }
        let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        stream.write_all(reply.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
        String::from_utf8_lossy(&request).into_owned()
    }

    #[tokio::test]
    async fn a_webhook_should_get_the_event_as_json_over_http() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            answer(socket, "204 No Content").await
        });
        let url = format!("http://127.0.0.1:{port}/hook");
        let status = post(&url, Path::new(""), r#"{"event":"swap"}"#.into())
            .await
            .unwrap();
        assert_eq!(status, 204);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains("content-type: application/json"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"event":"swap"}"#), "{request}");
    }

    /// A certificate authority and a server certificate for `localhost` it signed, in a
    /// folder: `ca.pem`; the TLS acceptor serving that certificate.
    fn tls(dir: &Path) -> tokio_rustls::TlsAcceptor {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(params, ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }

    #[tokio::test]
    async fn a_webhook_should_reach_an_https_endpoint_signed_by_its_own_ca() {
        let dir = tempfile::tempdir().unwrap();
        let acceptor = tls(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // The first connection comes without the CA and fails its handshake.
            let (socket, _) = listener.accept().await.unwrap();
            assert!(acceptor.accept(socket).await.is_err());
            let (socket, _) = listener.accept().await.unwrap();
            let stream = acceptor.accept(socket).await.unwrap();
            answer(stream, "200 OK").await
        });
        let url = format!("https://localhost:{port}/secret-token");
        let refused = post(&url, Path::new(""), "{}".into()).await;
        let Err(e) = refused else {
            panic!("a server the system does not trust: {refused:?}");
        };
        assert!(!e.to_string().contains("secret-token"), "no secret in: {e}");
        assert!(
            matches!(e, Error::Tries { tries: 1, .. }),
            "not tried again: {e}"
        );
        assert!(e.to_string().contains("certificate"), "{e}");
        let ca = dir.path().join("ca.pem");
        let status = post(&url, &ca, r#"{"event":"allExhausted"}"#.into())
            .await
            .unwrap();
        assert_eq!(status, 200);
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /secret-token HTTP/1.1"),
            "{request}"
        );
        assert!(
            request.ends_with(r#"{"event":"allExhausted"}"#),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_webhook_should_be_tried_again_after_a_server_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            answer(socket, "503 Service Unavailable").await;
            let (socket, _) = listener.accept().await.unwrap();
            answer(socket, "204 No Content").await
        });
        let url = format!("http://127.0.0.1:{port}/");
        assert_eq!(post(&url, Path::new(""), "{}".into()).await.unwrap(), 204);
        server.await.unwrap();
        let err = post(
            "http://127.0.0.1:9/",
            Path::new("/missing/ca.pem"),
            "{}".into(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("/missing/ca.pem"), "{err}");
    }

    #[test]
    fn sending_should_return_before_the_webhook_answers() {
        // An endpoint that takes the connection and never answers: a `send` that
        // waited for it would never return.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (returned, sent) = std::sync::mpsc::channel();
        let (accepted, done) = tokio::sync::oneshot::channel::<()>();
        let caller = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let spec = NotificationsSpec {
                    webhook: format!("http://127.0.0.1:{port}/"),
                    ..NotificationsSpec::default()
                };
                send(&spec, serde_json::json!({"event": "swap"}));
                returned.send(()).unwrap();
                // The runtime lives on until the post has reached the endpoint.
                let _ = done.await;
            });
        });
        sent.recv_timeout(Duration::from_secs(5))
            .expect("send returned without waiting for the endpoint");
        // And the post did go out, in the background.
        listener.set_nonblocking(true).unwrap();
        let (mut socket, _) = crate::testbed::wait_for(Duration::from_secs(5), "the post", || {
            listener.accept().ok()
        });
        socket.set_nonblocking(false).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut head = [0u8; 16];
        std::io::Read::read_exact(&mut socket, &mut head).unwrap();
        assert!(head.starts_with(b"POST / HTTP/1.1"), "{head:?}");
        drop(socket);
        accepted.send(()).unwrap();
        caller.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_command_should_get_the_event_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("event.json");
        let spec = NotificationsSpec {
            command: vec!["tee".into(), out.to_string_lossy().into_owned()],
            ..NotificationsSpec::default()
        };
        send(
            &spec,
            serde_json::json!({"event": "swap", "from": "a", "to": "b"}),
        );
        let text = crate::testbed::wait_for_or_none(Duration::from_secs(5), || {
            std::fs::read_to_string(&out).ok().filter(|t| !t.is_empty())
        });
        let v: Value = serde_json::from_str(&text.unwrap()).unwrap();
        assert_eq!(v["to"], "b");
    }
}
