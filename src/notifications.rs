//! Telling the operator: each swap, "every account exhausted", a recovered account and a
//! stalled task is POSTed as JSON to the webhook and/or given on stdin to the command
//! (an argv, no shell). Sending happens in the background: a failure is logged and never
//! holds up a reconcile.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::{debug, warn};

use crate::api::NotificationsSpec;

/// How long one notification may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends `event` (an object with at least `event`) as the spec says, in the background.
pub fn send(spec: &NotificationsSpec, event: Value) {
    if !spec.webhook.is_empty() {
        let (url, body) = (spec.webhook.clone(), event.to_string());
        tokio::spawn(async move {
            match tokio::time::timeout(TIMEOUT, post(&url, &body)).await {
                Ok(Ok(status)) if (200..300).contains(&status) => debug!(url, status, "notified"),
                Ok(Ok(status)) => warn!(url, status, "webhook answered with an error"),
                Ok(Err(e)) => warn!(url, error = %e, "webhook failed"),
                Err(_) => warn!(url, "webhook timed out"),
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

/// POSTs `body` to an `http://host[:port][/path]` URL; the response's status code.
async fn post(url: &str, body: &str) -> std::io::Result<u16> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        std::io::Error::other(
            "only http:// webhooks are supported; for https, use a command such as curl",
        )
    })?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let address = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: failover/{}\r\n\r\n{body}",
        body.len(),
        env!("CARGO_PKG_VERSION"),
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head = String::from_utf8_lossy(&response);
    head.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn post_should_send_the_event_as_json() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let status = post(
            &format!("http://127.0.0.1:{port}/hook"),
            r#"{"event":"swap"}"#,
        )
        .await
        .unwrap();
        assert_eq!(status, 204);
        let request = server.await.unwrap();
        assert!(request.starts_with("POST /hook HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains("Content-Type: application/json"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"event":"swap"}"#), "{request}");
    }

    #[tokio::test]
    async fn post_should_refuse_https_with_a_hint() {
        let err = post("https://example.invalid/x", "{}").await.unwrap_err();
        assert!(
            err.to_string().contains("use a command such as curl"),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_command_should_get_the_event_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("event.json");
        let spec = NotificationsSpec {
            webhook: String::new(),
            command: vec!["tee".into(), out.to_string_lossy().into_owned()],
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
