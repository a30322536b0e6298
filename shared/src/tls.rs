//! The process's TLS: rustls on ring, installed once as the default for every client that
//! does not bring its own (reqwest's Graph, AWS and event clients); MongoDB's driver uses
//! ring by default.

/// Installs ring as the process's rustls provider (idempotent; call before building a
/// reqwest client).
pub fn install() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only if another provider was installed first, which is then used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder on the installed provider, with a whole-request `timeout` and
/// a 3 s connect timeout (outbound HTTP: Graph, media, event receivers).
pub fn client(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(std::time::Duration::from_secs(3))
}

#[cfg(test)]
mod tests {
    #[test]
    fn https_clients_build_with_the_installed_provider() {
        super::install();
        assert!(reqwest::Client::builder().build().is_ok());
    }
}
