//! The HTTP client setup the webhooks and the fleet's etcd share: rustls with the ring
//! provider, the system's certificate authorities, and those of an operator's PEM file.

use std::path::Path;

/// A client builder trusting the system's authorities and, when `ca_file` is not
/// empty, those it holds; the reason, without the file's name, when it cannot be read.
pub(crate) fn builder(ca_file: &Path) -> Result<reqwest::ClientBuilder, String> {
    // The process-wide provider, for the system roots' verifier: installed once (a
    // second install fails harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder =
        reqwest::Client::builder().user_agent(concat!("failover/", env!("CARGO_PKG_VERSION")));
    if ca_file.as_os_str().is_empty() {
        return Ok(builder);
    }
    let pem = std::fs::read(ca_file).map_err(|e| e.to_string())?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in it".to_owned());
    }
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    Ok(builder)
}

/// What went wrong with a request, in words: reqwest's message without the URL (its
/// path may be a secret), and the deepest cause (`Connection refused`), which its own
/// message leaves out.
pub(crate) fn why(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut deepest: Option<&dyn std::error::Error> = None;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        deepest = Some(s);
        source = s.source();
    }
    match deepest {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
